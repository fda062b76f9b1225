#!/usr/bin/env bash
# One command for the whole comparison: builds rbuild, starts the peers, runs every
# workload of ../shared/bench for rbuild, BuildKit, docker's legacy builder and buildah
# (RUNS times each, interleaved), and writes bench/results/{results.md,results.json,chart.png}.
#   bench/run.sh [--runs N] [--builders rbuild,buildkit,docker,buildah]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
need=()
command -v bc >/dev/null || need+=(bc)
[ -x /usr/bin/time ] || need+=(time)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
command -v podman >/dev/null || need+=(podman)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -p rbuild-cli -p rbuild-bench
exec target/x86_64-unknown-linux-gnu/release/rbuild-bench "$@"
