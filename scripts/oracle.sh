#!/usr/bin/env bash
# The differential oracle: every case of ../shared/oracle built by docker's legacy
# builder and by rbuild, files and config compared. Cases run one at a time (they
# share the docker engine's layer cache). Needs scripts/setup.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
RBUILD=${RBUILD:-$PWD/target/release/rbuild}
[ -x "$RBUILD" ] || cargo build --release -p rbuild-cli
work=$(mktemp -d /var/tmp/rbuild-oracle.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 "$SHARED/oracle/make-cases.py" "$work/cases" >/dev/null
status=0
python3 "$SHARED/oracle/compare.py" --rbuild "$RBUILD" --root "$work/store" "$work"/cases/*/ || status=1
python3 "$SHARED/oracle/compare.py" --rbuild "$RBUILD" --root "$work/store" "$SHARED"/oracle/buildah-conformance/*/ || status=1
exit $status
