"""The `cat2rs` client commands against the reference server (README "Command-line client"): the read
commands give the same answers from a Caterva2 server that is not cat2rs, so the CLI is a general
Caterva2 client. (crates/cat2rs/tests/client.rs tests every command against cat2rs itself.)"""

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import cat2rs_launch
from loginmode import start_reference

USER = ("cliref@example.com", "cliref-password")


def cat2rs_binary():
    spec = cat2rs_launch.server_spec()
    if spec and spec != cat2rs_launch.REFERENCE and pathlib.Path(spec).is_file():
        return spec
    built = pathlib.Path(__file__).resolve().parents[2] / "target" / "debug" / "cat2rs"
    return str(built) if built.is_file() else None


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    binary = cat2rs_binary()
    if binary is None:
        pytest.skip("no cat2rs binary (cargo build)")
    work = tmp_path_factory.mktemp("cli-ref")
    state = work / "state"
    subprocess.run([binary, "examples", "--statedir", str(state)], check=True, capture_output=True)
    srv = start_reference(work, state)
    try:
        srv.add_user(*USER)
        srv.binary = binary
        yield srv
    finally:
        srv.close()


def cli(srv, *args, login=True, cwd=None):
    env = dict(os.environ, CAT2RS_URL=srv.url)
    env.pop("CAT2RS_USER", None)
    env.pop("CAT2RS_PASS", None)
    if login:
        env.update(CAT2RS_USER=USER[0], CAT2RS_PASS=USER[1])
    return subprocess.run([srv.binary, *args], env=env, capture_output=True, text=True, cwd=cwd, timeout=60)


def test_read_commands_against_the_reference(ref, tmp_path):
    r = cli(ref, "roots", "--json")
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)) == {"@public", "@personal", "@shared"}
    r = cli(ref, "list", "@public/examples")
    assert r.returncode == 0, r.stderr
    assert "stack-3d.b2nd" in r.stdout.splitlines()
    r = cli(ref, "tree", "@public")
    assert r.stdout.startswith("@public\n    examples/\n"), r.stdout
    r = cli(ref, "info", "@public/examples/arange-1d.b2nd", "--json")
    assert json.loads(r.stdout)["shape"] == [10000]
    r = cli(ref, "show", "@public/examples/arange-1d.b2nd[3:6]")
    assert r.stdout == "shape [3], dtype int64\n[3, 4, 5]\n", (r.stdout, r.stderr)
    npy = tmp_path / "frame.npy"
    r = cli(ref, "show", "@public/examples/stack-3d.b2nd[5, 60:64, 60:64]", "--npy", str(npy))
    assert r.returncode == 0, r.stderr
    import blosc2

    local = blosc2.open(str(ref.statedir / "public" / "examples" / "stack-3d.b2nd"))
    np.testing.assert_array_equal(np.load(npy), local[5, 60:64, 60:64])
    r = cli(ref, "download", "@public/examples/README.md", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "README.md").read_text().startswith("# Example datasets")
    # Errors from the reference exit 1 too, with its words.
    r = cli(ref, "show", "@public/nothing.b2nd")
    assert r.returncode == 1 and "404" in r.stderr, (r.returncode, r.stderr)
    r = cli(ref, "list", "@personal", login=False)
    assert r.returncode == 1 and "401" in r.stderr, (r.returncode, r.stderr)
