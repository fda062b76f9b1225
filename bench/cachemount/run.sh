#!/usr/bin/env bash
# Cache mounts that travel with the registry cache: a CI rebuild after one dependency
# changed, on a fresh store (an ephemeral runner), with `--cache-from` a registry cache
# exported by an earlier build — once without the cache mount's contents (what BuildKit
# exports: moby/buildkit#1474) and once with them (rbuild's `cache-mounts=`).
#
# The RUN step is a package manager in miniature: it keeps downloaded packages in a
# cache mount and fetches only what the mount lacks, from a package index on loopback
# that serves RATE MB/s per download (a CI runner's typical rate from PyPI or npm).
#
#   bench/cachemount/run.sh [--runs N] [--pkgs N] [--pkg-mb N] [--rate MB/s]
# Needs: rbuild built (target/x86_64-unknown-linux-gnu/release/rbuild), the loopback registry (scripts/setup.sh),
# the busybox base in docker. Writes bench/results/cachemount.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=5 PKGS=24 PKG_MB=8 RATE=25
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;; --pkgs) PKGS=$2; shift 2;;
    --pkg-mb) PKG_MB=$2; shift 2;; --rate) RATE=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
RB=$PWD/target/x86_64-unknown-linux-gnu/release/rbuild
W=$(mktemp -d /var/tmp/rbuild-bench-cm.XXXXXX)
SRV= REGPID=
cleanup() {
  [ -n "$SRV" ] && kill "$SRV" 2>/dev/null || true
  [ -n "$REGPID" ] && kill "$REGPID" 2>/dev/null || true
  for s in "$W"/store*; do [ -d "$s" ] && "$RB" --root "$s" __netns-teardown 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

# Packages, and the base image once (each fresh store loads it untimed).
mkdir -p "$W/pkgs" "$W/ctx"
for i in $(seq 1 $((PKGS + 1))); do
  head -c $((PKG_MB << 20)) /dev/urandom > "$W/pkgs/pkg-$i.tar"
done
docker save rbuild-anchor/busybox:1 -o "$W/base.tar"
python3 bench/cachemount/pkgserver.py "$W/pkgs" 0 "$RATE" > "$W/port" &
SRV=$!
for _ in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
PORT=$(cat "$W/port")

# A registry of this run's own (its storage goes with the work dir).
RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$W/registry" "$RPORT" > "$W/registry.yml"
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 &
REGPID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$RPORT/v2/" >/dev/null && break; sleep 0.1; done
REG=127.0.0.1:$RPORT

cat > "$W/ctx/Dockerfile" <<EOF
FROM rbuild-anchor/busybox:1
COPY deps.txt /deps.txt
RUN --mount=type=cache,id=pkgs,target=/cache \\
    for p in \$(cat /deps.txt); do \\
      if [ ! -f /cache/\$p ]; then wget -q -O /cache/\$p.part http://127.0.0.1:$PORT/\$p && mv /cache/\$p.part /cache/\$p; fi; \\
    done; \\
    mkdir -p /app && for p in \$(cat /deps.txt); do cp /cache/\$p /app/; done
EOF
deps() { seq 1 "$1" | sed 's/^/pkg-/; s/$/.tar/' > "$W/ctx/deps.txt"; }

fresh() {
  rm -rf "$W/$1"
  "$RB" --root "$W/$1" load -i "$W/base.tar" >/dev/null
}

# The earlier CI build: all but the last package; its cache exported twice.
TAG=cm-$$
fresh store-seed
deps "$PKGS"
"$RB" --root "$W/store-seed" build -q --network host -t bench/cm:1 \
  --cache-to "type=registry,ref=$REG/rbuild-bench/cache:$TAG-plain,mode=max,cache-mounts=0" \
  --cache-to "type=registry,ref=$REG/rbuild-bench/cache:$TAG-mounts,mode=max" "$W/ctx" >/dev/null

# The rebuild: one more package, a fresh store, the cache from the registry.
deps $((PKGS + 1))
declare -A T
for run in $(seq 1 "$RUNS"); do
  for mode in plain mounts; do
    fresh "store-$mode"
    sync
    t0=$(date +%s.%N)
    "$RB" --root "$W/store-$mode" build -q --network host \
      --cache-from "type=registry,ref=$REG/rbuild-bench/cache:$TAG-$mode" "$W/ctx" >/dev/null
    t1=$(date +%s.%N)
    T[$mode]="${T[$mode]:-} $(echo "$t1 - $t0" | bc)"
    "$RB" --root "$W/store-$mode" __netns-teardown 2>/dev/null || true
  done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
P=$(echo "${T[plain]}" | median); M=$(echo "${T[mounts]}" | median)
mkdir -p bench/results
{
  echo "Rebuild after one dependency change on a fresh store, \`--cache-from\` a registry cache"
  echo "($PKGS packages of $PKG_MB MiB before, one more after; the package index serves $RATE MB/s;"
  echo "median of $RUNS runs each, seconds; $(nproc) cores, $(uname -r))."
  echo
  echo "| cache exported | rebuild | runs |"
  echo "|---|---|---|"
  echo "| records and layers only (as BuildKit's) | $P |${T[plain]} |"
  echo "| with the cache mount's contents (\`cache-mounts=\`) | $M |${T[mounts]} |"
  echo
  echo "Speed-up: $(echo "scale=1; $P / $M" | bc)x."
} | tee bench/results/cachemount.md
