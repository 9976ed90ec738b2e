#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ and runs each one for a short fixed time
# from its seed corpus, so that none of them rots (README "Fuzzing").
# Installs what it needs when missing: the nightly toolchain (cargo-fuzz
# builds with -Zsanitizer=address) and cargo-fuzz itself.
#
#   scripts/fuzz-smoke.sh                 every target, FUZZ_SECONDS (15) each
#   scripts/fuzz-smoke.sh slice expr      some targets
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh hdf5
#   FUZZ_SEED=0 FUZZ_SECONDS=1800 scripts/fuzz-smoke.sh b2z   (a random seed)
#
# The build is `cargo fuzz build --dev` (lightly optimised, see fuzz/Cargo.toml).
# New inputs the fuzzer finds go to fuzz/.work/<target>/ (kept between runs,
# git-ignored), never into the seed corpus in fuzz/corpus/; a crash fails the
# run and leaves the input in fuzz/artifacts/<target>/
# (`cd fuzz && cargo +nightly fuzz run --dev <target> <file>` replays it).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${FUZZ_SECONDS:-15}
# A fixed seed by default, so that the short runs CI makes take the same path
# from the seeds each time (a new finding shows up in a long run by hand, not
# as a CI failure of an unrelated change); FUZZ_SEED=0 picks a random one.
seed=${FUZZ_SEED:-1}

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz-smoke: rustup toolchain install nightly" >&2
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz-smoke: cargo install cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cd "$repo/fuzz"
cargo fmt -- --check
start=$(date +%s)
nice -n 10 cargo +nightly fuzz build --dev
echo "fuzz-smoke: targets built in $(( $(date +%s) - start ))s"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
work="$repo/fuzz/.work"
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    echo "fuzz-smoke: $t for ${seconds}s"
    # -timeout: an input that runs for 30 s is a hang, and a failure.
    # -detect_leaks=0: C-Blosc2 2.21 leaks on some damaged frames (error paths
    # of frame_from_cframe and frame_get_chunk, in C; see the fuzz log), which
    # would stop every run of the targets that read frames; what it leaks, and
    # ASan's quarantine, take the frame targets past libFuzzer's default 2 GB
    # of RSS within minutes, hence 4 GB (any one allocation past it still fails).
    # ASAN_OPTIONS: the same for the leak check at exit, which would fail a
    # run that found nothing.
    if ASAN_OPTIONS=detect_leaks=0 nice -n 10 cargo +nightly fuzz run --dev "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -seed="$seed" -timeout=30 -detect_leaks=0 -rss_limit_mb=4096 \
        -print_final_stats=1 \
        >"$work/$t.log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$work/$t.log" || true
    else
        tail -n 60 "$work/$t.log"
        echo "fuzz-smoke: $t FAILED (the input is in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
done
echo "fuzz-smoke: ${#targets[@]} targets in $(( $(date +%s) - start ))s"
