#!/usr/bin/env bash
# The differential oracle: every case of ../shared/oracle built by docker's legacy
# builder and by rbuild, files and config compared. Cases run one at a time (they
# share the docker engine's layer cache). Needs scripts/setup.sh to have run.
#
# Fails on any FAIL and on any ERROR except one: a case docker itself cannot build
# ("docker failed on a case that should build", e.g. make-cases' `user`, which runs
# `mkdir /home/app` on a base without /home). Those are printed and counted, not hidden.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
RBUILD=${RBUILD:-$PWD/target/release/rbuild}
[ -x "$RBUILD" ] || cargo build --release -p rbuild-cli
work=$(mktemp -d /var/tmp/rbuild-oracle.XXXXXX)
# The store's network namespace (and its pasta) go before the store itself.
trap '"$RBUILD" --root "$work/store" __netns-teardown >/dev/null 2>&1; rm -rf "$work"' EXIT
python3 "$SHARED/oracle/make-cases.py" "$work/cases" >/dev/null
python3 "$SHARED/oracle/compare.py" --rbuild "$RBUILD" --root "$work/store" "$work"/cases/*/ | tee "$work/public.log" || true
python3 "$SHARED/oracle/compare.py" --rbuild "$RBUILD" --root "$work/store" "$SHARED"/oracle/buildah-conformance/*/ | tee "$work/buildah.log" || true
python3 - "$work/public.log" "$work/buildah.log" <<'PY'
import sys
bad, docker_broken, passed = [], [], 0
for log in sys.argv[1:]:
    lines = open(log).read().splitlines()
    for i, l in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if l.startswith("PASS "):
            passed += 1
        elif l.startswith("ERROR ") and "docker failed on a case that should build" in nxt:
            docker_broken.append(l[6:])
        elif l.startswith(("FAIL ", "ERROR ")):
            bad.append(l)
    if not any(l.endswith("failed") and " passed, " in l for l in lines):
        bad.append(f"{log}: compare.py did not finish")
print(f"oracle: {passed} passed, {len(bad)} failed, {len(docker_broken)} not buildable by docker itself: {docker_broken}")
sys.exit(1 if bad else 0)
PY
