#!/usr/bin/env bash
# The main job, offline: build rbuild, give it a busybox base image, build the demo
# Dockerfile in fixtures/demo (real RUN steps in sandboxes), run the image, rebuild it
# (every step cached). Needs root (namespaces, overlay mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\n[demo] %s\n' "$*" >&2; }

need=()
{ [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; } || need+=(busybox-static file)
# The default network of `run`: pasta (outbound access) and nft (NAT) in rbuild's own
# network namespace.
command -v pasta >/dev/null || need+=(passt)
command -v nft >/dev/null || need+=(nftables)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -p rbuild-cli
RBUILD="$PWD/target/x86_64-unknown-linux-gnu/release/rbuild"
export RBUILD_ROOT=${RBUILD_ROOT:-/var/lib/rbuild}

# The base: the same static-busybox rootfs the peers use, imported without any daemon.
ROOTFS=${BUSYBOX_ROOTFS:-/var/tmp/rbuild-anchors/busybox-rootfs.tar}
if ! "$RBUILD" inspect rbuild-anchor/busybox:1 >/dev/null 2>&1; then
  if [ ! -s "$ROOTFS" ]; then
    ROOTFS=$(mktemp /var/tmp/busybox-rootfs.XXXXXX.tar)
    r=$(mktemp -d)
    mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/var" "$r/usr/bin"
    cp /bin/busybox "$r/bin/busybox"
    for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
    chmod 1777 "$r/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n' >"$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\n' >"$r/etc/group"
    find "$r" -exec touch -h -d '2020-01-01T00:00:00Z' {} +
    tar --sort=name --numeric-owner --owner=0 --group=0 -C "$r" -cf "$ROOTFS" .
    rm -rf "$r"
  fi
  log "importing the busybox base"
  "$RBUILD" import "$ROOTFS" rbuild-anchor/busybox:1
fi

log "rbuild -t rbuild/demo fixtures/demo"
"$RBUILD" -t rbuild/demo --network none fixtures/demo
log "rbuild run --rm rbuild/demo"
"$RBUILD" run --rm rbuild/demo
log "rebuild: nothing changed, so every step comes from the cache"
time "$RBUILD" -t rbuild/demo --network none --progress plain fixtures/demo
