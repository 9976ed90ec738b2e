#!/usr/bin/env bash
# Builds Garage (the distributed S3 store the cluster tests run on) once into a
# folder outside the clone that later runs reuse, and prints its binary's path.
# The first build takes ~15 minutes on two cores; afterwards this is instant.
#   CAT2RS_TOOLS  where built tools are kept (default ~/.cache/cat2rs-tools)
set -euo pipefail
version=2.5.0
root=${CAT2RS_TOOLS:-$HOME/.cache/cat2rs-tools}/garage-$version
bin=$root/bin/garage
if [[ ! -x $bin ]]; then
    echo "building garage $version into $root (first run only, ~15 min)" >&2
    # sqlite is the metadata engine cluster.sh configures; lmdb, k2v and
    # metrics are left out to shorten the build.
    cargo install --locked --quiet --root "$root.partial" --version "$version" \
        --no-default-features --features bundled-libs,sqlite garage >&2
    rm -rf "$root" && mv "$root.partial" "$root"
fi
echo "$bin"
