#!/usr/bin/env bash
# Runs every test of cat2rs on a fresh Debian machine, installing what it
# needs: Debian packages (cmake, libclang-dev, python3-venv), a Python venv
# with the official Caterva2 client and its test suite (.venv), then
#   1. Rust unit and integration tests (cargo test), lints (clippy, fmt),
#   2. our integration suite: the official client against a real `cat2rs serve`,
#   3. the upstream Caterva2 test suite against `cat2rs serve` (conformance),
#      failing if a test that passed before (conformance/expected-pass) fails,
#   4. the scaled-out mode on real parts (scripts/test-cluster.sh): the S3
#      backend's tests on moto and Garage with PostgreSQL, the read suite
#      through a cluster's balancer, faults and concurrency on 3 replicas
#      (Garage is built once, ~15 min, into ~/.cache/cat2rs-tools),
#   5. every fuzz target for 15 s from its seed corpus (scripts/fuzz-smoke.sh:
#      nightly, ASan; its first build takes ~12 min on two idle cores).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

step "system packages"
scripts/install-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "layers: no import cycles in cat2-core; the server's data reached through storage only"
python3 scripts/check-layers.py

# The whole workspace, so that dependencies are built with the features
# clippy already built them with (one crate alone would rebuild them).
step "cargo doc: every intra-doc link resolves (the map contributors read)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items

step "python venv (official client, python-blosc2, reference test suite)"
python=$(conformance/setup-venv.sh | tail -n 1)
export CAT2RS_BIN="$repo/target/debug/cat2rs"
# Lets the Rust round-trip tests check that python-blosc2 reads what we write.
export CAT2RS_PYTHON="$python"
# The web GUI's browser tests must run here, not be skipped for want of Chromium.
export CAT2RS_REQUIRE_GUI=1

step "cargo test"
cargo build -p cat2rs
cargo test --workspace

step "integration suite: official client against cat2rs serve"
"$python" -m pytest -q -p no:cacheprovider conformance/tests

step "scaled out: cat2-cloud on moto and Garage, the integration suite on clusters, faults"
scripts/test-cluster.sh "$python"

step "benchmark harness, smoke run (tiny data; keeps bench/ from rotting)"
bench/run --smoke --bin "$CAT2RS_BIN"
"$python" bench/hdf5_proxy.py --smoke --bin "$CAT2RS_BIN"
"$python" bench/compute.py --smoke --bin "$CAT2RS_BIN"
"$python" bench/cluster.py --smoke --bin "$CAT2RS_BIN"

step "conformance: upstream Caterva2 suite against cat2rs serve"
"$python" conformance/run-upstream.py --check

step "fuzz targets, 15 s each from their seeds (keeps fuzz/ from rotting)"
scripts/fuzz-smoke.sh

step "all tests passed in $(( $(date +%s) - start ))s"
