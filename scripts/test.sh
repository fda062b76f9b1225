#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: setup, unit + integration tests of
# every crate (real namespaces, mounts, docker/skopeo/umoci peers), formatting and
# clippy, then the differential oracle against docker's legacy builder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo build --release --workspace --bins
# Tests share the machine's mounts and the docker engine; two threads keep the
# suite under 15 minutes on 2 cores without starving the sandboxes.
cargo test --release --workspace --no-fail-fast -- --test-threads=2
bash scripts/oracle.sh
