#!/usr/bin/env bash
# Runs cat2rs on the embedded default: a local state dir (_caterva2/state)
# with example datasets in @public/examples, listening on localhost:8000.
# Extra arguments go to `cat2rs serve` (e.g. --listen 0.0.0.0:8000).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
scripts/install-deps.sh
cargo build --release -p cat2rs
statedir=${CAT2RS_STATEDIR:-_caterva2/state}
./target/release/cat2rs examples --statedir "$statedir" >/dev/null
echo "cat2rs: serving $statedir on http://localhost:8000 (Ctrl-C to stop)" >&2
exec ./target/release/cat2rs serve --conf scripts/example-server.toml --statedir "$statedir" "$@"
