#!/usr/bin/env bash
# Installs everything rbuild's build, tests and benchmarks need on a fresh Debian
# bookworm machine (as root), then starts the peer systems on loopback through
# ../shared/anchors/setup.sh, with the Debian bookworm base the oracle's Debian cases
# start from (--debian: a debootstrap the first time, ~3 min). Idempotent: a second run
# only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup] %s\n' "$*" >&2; }

need=()
for bin_pkg in busybox:busybox-static hyperfine:hyperfine curl:curl script:bsdutils \
               python3:python3 file:file ip:iproute2 htpasswd:apache2-utils \
               pasta:passt nft:nftables nsenter:util-linux losetup:mount \
               dpkg-scanpackages:dpkg-dev cc:gcc git:git ssh-agent:openssh-client; do
  bin=${bin_pkg%%:*}; pkg=${bin_pkg#*:}
  command -v "$bin" >/dev/null 2>&1 || need+=("$pkg")
done
# Tests link small helpers statically (seccomp probe, UDP echo server).
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

SHARED=${SHARED:-$(cd .. && pwd)/shared}
if [ -x "$SHARED/anchors/setup.sh" ] || [ -f "$SHARED/anchors/setup.sh" ]; then
  # dpkg-dev (above) lets ../shared/oracle/debian/make-repo.sh index the local apt repo.
  bash "$SHARED/anchors/setup.sh" --debian
else
  log "no ../shared/anchors/setup.sh: peers (docker, buildah, registry) not started"
fi
# docker 26 with BuildKit 0.13 (and buildah 1.39, podman 5.4) beside the old engine, the
# oracle of the BuildKit-era cases (scripts/oracle.sh's buildkit set) and of build
# --output and build checks; idempotent: a second start only checks.
if [ -f "$SHARED/anchors/modern.sh" ]; then
  bash "$SHARED/anchors/modern.sh" start
else
  log "no ../shared/anchors/modern.sh: docker26 (BuildKit) not started"
fi
