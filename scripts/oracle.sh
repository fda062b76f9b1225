#!/usr/bin/env bash
# The differential oracle: every case of ../shared/oracle built by docker's legacy
# builder and by rbuild, files, xattrs, config, layer counts and runtime checks compared.
# Sets: make-cases.py (busybox), buildah-conformance, the Debian cases (a Debian
# bookworm base, packages from a local apt repository on 127.0.0.1:48080), moby (the
# cases scripts/oracle/moby-cases.py ports from moby's own build tests, busybox base) and
# the BuildKit-era cases (buildkit/make-cases.py, compared with docker 26's BuildKit:
# `compare.py --docker docker26 --buildkit`, layer counts not compared). Cases run one at
# a time within a set (they share the docker engine's layer cache: two builds at once can
# have the legacy builder reuse a cached image the other just removed, 'unable to find
# image'). RBUILD_ORACLE_JOBS (default 1) splits moby's ~400 into interleaved shares, each
# its own compare.py, for a quick local run that accepts that race.
# Needs scripts/setup.sh to have run (it makes the Debian base with anchors/setup.sh
# --debian and starts docker26 with anchors/modern.sh).
#
# The apt repository is made by ../shared/oracle/debian/make-repo.sh; if nothing serves
# it yet, this script starts its server and stops that server (by its PID) when it exits.
#
# Fails on any FAIL and on any ERROR except one: a case docker itself cannot build
# ("docker failed on a case that should build"). Those are printed and counted, not hidden.
# RBUILD_ORACLE_SETS (default "public buildah debian moby buildkit") picks the sets.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
RBUILD=${RBUILD:-$PWD/target/x86_64-unknown-linux-gnu/release/rbuild}
SETS=${RBUILD_ORACLE_SETS:-public buildah debian moby buildkit}
JOBS=${RBUILD_ORACLE_JOBS:-1}
[ -x "$RBUILD" ] || cargo build --release -p rbuild-cli
work=$(mktemp -d /var/tmp/rbuild-oracle.XXXXXX)
repo_pid=""
cleanup() {
  if [ -n "$repo_pid" ]; then
    kill "$repo_pid" 2>/dev/null || true
    rm -f "$DEB_REPO.http.pid"
  fi
  # The store's network namespace (and its pasta) go before the store itself.
  "$RBUILD" --root "$work/store" __netns-teardown >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
compare() {
  python3 "$SHARED/oracle/compare.py" --rbuild "$RBUILD" --root "$work/store" --out "$work/results" "$@"
}
served() {
  python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:48080/Packages", timeout=2)' 2>/dev/null
}

logs=()
for set in $SETS; do
  case $set in
    public)
      python3 "$SHARED/oracle/make-cases.py" "$work/cases" >/dev/null
      compare "$work"/cases/*/ | tee "$work/public.log" || true ;;
    buildah)
      compare "$SHARED"/oracle/buildah-conformance/*/ | tee "$work/buildah.log" || true ;;
    buildkit)
      if ! command -v docker26 >/dev/null 2>&1; then
        echo "oracle: no docker26 (run scripts/setup.sh: ../shared/anchors/modern.sh start)" | tee "$work/buildkit.log"
      else
        python3 "$SHARED/oracle/buildkit/make-cases.py" "$work/bkcases" >/dev/null
        compare --docker docker26 --buildkit "$work"/bkcases/*/ | tee "$work/buildkit.log" || true
      fi ;;
    debian)
      if ! docker image inspect rbuild-anchor/debian:bookworm >/dev/null 2>&1; then
        echo "oracle: no rbuild-anchor/debian:bookworm (run scripts/setup.sh)" | tee "$work/debian.log"
      else
        export DEB_REPO=${DEB_REPO:-/var/tmp/rbuild-deb-repo}
        was_served=0
        served && was_served=1
        sh "$SHARED/oracle/debian/make-repo.sh" >/dev/null
        if [ "$was_served" = 0 ] && [ -s "$DEB_REPO.http.pid" ]; then
          repo_pid=$(cat "$DEB_REPO.http.pid")
        fi
        python3 "$SHARED/oracle/debian/make-cases.py" "$DEB_REPO" "$work/debian" >/dev/null
        # Two caches hold facts about the building host, not the image's inputs: glibc's
        # ldconfig aux-cache records each library's inode number, ctime and device (docker's
        # values are those of its own unpack of the base), and apt's srcpkgcache.bin comes
        # out in one of two forms from run to run for docker too. No second builder can
        # reproduce their bytes; their type, mode and owner are still compared.
        for c in "$work"/debian/*/; do
          printf '%s\n' var/cache/ldconfig/aux-cache var/cache/apt/srcpkgcache.bin >>"$c/ignore-content"
        done
        compare "$work"/debian/*/ | tee "$work/debian.log" || true
      fi ;;
    moby)
      python3 scripts/oracle/moby-cases.py "$work/moby" >/dev/null
      cases=("$work"/moby/*/)
      pids=()
      for ((j = 0; j < JOBS; j++)); do
        share=()
        for ((k = j; k < ${#cases[@]}; k += JOBS)); do share+=("${cases[k]}"); done
        compare "${share[@]}" >"$work/moby-$j.log" 2>&1 &
        pids+=($!)
      done
      for p in "${pids[@]}"; do wait "$p" || true; done
      for ((j = 0; j < JOBS; j++)); do
        cat "$work/moby-$j.log"
        logs+=("$work/moby-$j.log")
      done
      continue ;;
    *) echo "oracle: unknown set $set" >&2; exit 2 ;;
  esac
  logs+=("$work/$set.log")
done
python3 - "${logs[@]}" <<'PY'
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
for b in bad:
    print(f"  {b}")
sys.exit(1 if bad else 0)
PY
