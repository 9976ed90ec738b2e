#!/usr/bin/env bash
# System packages cat2rs needs to build on Debian: cmake and libclang for
# C-Blosc2 (blosc2-rs-sys runs cmake and bindgen), python3-venv for the tests,
# chromium for the web GUI's end-to-end tests (driven by Playwright), and
# PostgreSQL and haproxy for the scaled-out tests (scripts/cluster.sh).
# Installs only what is missing; needs root (or sudo) when something is.
set -euo pipefail
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
# bindgen needs libclang.so somewhere the loader or clang-sys can find it.
# (libclang-cpp, which other packages bring, is not it: bindgen loads libclang.so or libclang-N.so.)
if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* >/dev/null 2>&1 \
    && ! ldconfig -p 2>/dev/null | grep -Eq 'libclang(-[0-9.]+)?\.so'; then
    need+=(libclang-dev)
fi
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
command -v haproxy >/dev/null 2>&1 || command -v /usr/sbin/haproxy >/dev/null 2>&1 || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "install-deps: apt-get install ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q "${need[@]}"
fi
