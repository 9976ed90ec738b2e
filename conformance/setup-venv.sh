#!/usr/bin/env bash
# Create (if missing) the conformance venv at <repo>/.venv and install
# conformance/requirements.txt into it.  Idempotent: the pip step is skipped
# when the stamp file in the venv matches the hash of the requirements (and of
# the Python version).  Only python3 is assumed; on Debian the venv module
# (python3-venv) is installed with apt-get when it is missing.
#
# Usage: conformance/setup-venv.sh            (venv at <repo>/.venv)
#        CAT2RS_VENV=/some/dir conformance/setup-venv.sh
# Prints the venv's python path as its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
venv=${CAT2RS_VENV:-$repo/.venv}
req=$here/requirements.txt
python=${PYTHON:-python3}

have_venv_module() {
    "$python" -c 'import venv, ensurepip' >/dev/null 2>&1
}

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    if ! have_venv_module; then
        echo "setup-venv: python venv/ensurepip missing; installing python3-venv with apt-get" >&2
        sudo=""
        if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -q
        $sudo apt-get install -y -q python3-venv
        if ! have_venv_module; then
            # python3-venv is a metapackage; name the versioned one too.
            pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
            $sudo apt-get install -y -q "python${pyver}-venv"
        fi
    fi
    rm -rf "$venv"   # a half-made venv (e.g. created without ensurepip) is useless
    echo "setup-venv: creating $venv" >&2
    "$python" -m venv "$venv"
fi

want=$( { cat "$req"; "$venv/bin/python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
stamp=$venv/.cat2rs-conformance-requirements.sha256
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "setup-venv: installing $req" >&2
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req"
    echo "$want" > "$stamp"
else
    echo "setup-venv: requirements already installed (stamp matches)" >&2
fi
echo "$venv/bin/python"
