"""One user database, two servers: cat2rs and the reference Python server.

Users added by cat2rs (its `/api/adduser/` and its `cat2rs adduser` command)
log in to the reference server run on the same state dir with the same
`CATERVA2_SECRET`; data one server writes for a user is that user's `@personal`
on the other; session cookies of either server open sessions on the other.
(Users added by the reference's `srv_utils.add_user` logging in to cat2rs is
what every other login-mode test does.)  Also the `cat2rs adduser / deluser /
listusers` commands, run while the server runs.
"""

import subprocess

import httpx
import numpy as np
import pytest

import cat2rs_launch
from loginmode import start_reference, start_server

ROOT = ("root@example.com", "rootpass1")


def cat2rs_cli():
    """argv prefix of the cat2rs binary when it has the user commands, else a reason to skip."""
    spec = cat2rs_launch.server_spec()
    if spec == cat2rs_launch.REFERENCE:
        return None, "CAT2RS_BIN=reference: no cat2rs binary to run"
    try:
        r = subprocess.run([spec, "adduser", "--help"], capture_output=True, text=True, timeout=30)
    except OSError as e:
        return None, f"cannot run {spec}: {e}"
    if r.returncode != 0:
        return None, f"`cat2rs adduser --help` failed: {r.stderr.strip()[:200]}"
    return [spec], None


def run_cli(argv, *args):
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=60)


# The reference server runs on our state directory (its db.sqlite, its files).
pytestmark = pytest.mark.local_state


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(cat2rs, reference) on one state dir."""
    work = tmp_path_factory.mktemp("interop")
    ours = start_server(work / "cat2rs")
    ref = None
    try:
        ours.add_user(*ROOT, superuser=True)
        ref = start_reference(work / "reference", ours.statedir)
        yield ours, ref
    finally:
        if ref is not None:
            ref.close()
        ours.close()


def test_user_added_through_the_api_logs_in_to_the_reference(pair):
    ours, ref = pair
    root = ours.client(ROOT)
    assert root.adduser("viaapi@example.com", "viaapipass", False).startswith("User added")

    theirs = ref.client(("viaapi@example.com", "viaapipass"))
    assert theirs.listusers("viaapi@example.com")[0]["is_superuser"] is False
    with pytest.raises(httpx.HTTPStatusError) as exc:
        ref.client(("viaapi@example.com", "wrongpass1"))
    assert exc.value.response.status_code == 400
    # same user id on both sides: what the reference writes is this user's @personal on cat2rs
    theirs.upload(np.arange(20).reshape(4, 5), "@personal/fromref/a.b2nd")
    mine = ours.client(("viaapi@example.com", "viaapipass"))
    np.testing.assert_array_equal(mine.get("@personal/fromref/a.b2nd")[:], np.arange(20).reshape(4, 5))
    mine.upload(np.arange(3.0), "@personal/fromours/b.b2nd")
    np.testing.assert_array_equal(theirs.get("@personal/fromours/b.b2nd")[:], np.arange(3.0))
    # not a superuser there either
    with pytest.raises(httpx.HTTPStatusError) as exc:
        theirs.adduser("x@example.com", "xpassword1")
    assert exc.value.response.status_code == 401


def test_superuser_added_through_the_api_is_one_on_the_reference(pair):
    ours, ref = pair
    ours.client(ROOT).adduser("boss@example.com", "bosspass12", True)
    boss = ref.client(("boss@example.com", "bosspass12"))
    assert boss.adduser("hired@example.com", "hiredpass1").startswith("User added")
    # and the reference's user logs in to cat2rs
    hired = ours.client(("hired@example.com", "hiredpass1"))
    assert hired.get_list("@personal") == []


def test_sessions_cross_over(pair):
    """Both servers mint fastapi-users JWTs with the shared secret: each accepts the other's."""
    ours, ref = pair
    ours_cookie = ours.login_cookie(*ROOT)
    ref_cookie = ref.login_cookie(*ROOT)
    for srv, cookie in [(ref, ours_cookie), (ours, ref_cookie)]:
        r = srv.http(cookie).get("/api/listusers/", params={"username": ROOT[0]})
        assert r.status_code == 200, (srv.spec, r.text)
        assert r.json()[0]["email"] == ROOT[0]


def test_user_deleted_by_cat2rs_is_gone_for_the_reference(pair):
    ours, ref = pair
    root = ours.client(ROOT)
    root.adduser("leaver@example.com", "leaverpass", False)
    ref.client(("leaver@example.com", "leaverpass"))
    root.deluser("leaver@example.com")
    with pytest.raises(httpx.HTTPStatusError) as exc:
        ref.client(("leaver@example.com", "leaverpass"))
    assert exc.value.response.status_code == 400


def test_cli_user_commands(pair):
    argv, why = cat2rs_cli()
    if argv is None:
        pytest.skip(why)
    ours, ref = pair
    sd = str(ours.statedir)

    r = run_cli(argv, "adduser", "cli@example.com", "clipassword", "--statedir", sd)
    assert r.returncode == 0, r.stderr
    assert "clipassword" not in r.stdout + r.stderr, "the CLI must not print a given password"
    r = run_cli(argv, "adduser", "clisu@example.com", "clisupass1", "--superuser", "--statedir", sd)
    assert r.returncode == 0, r.stderr

    # the running cat2rs sees them at once, and so does the reference server
    ours.client(("cli@example.com", "clipassword")).upload(np.arange(4), "@personal/cli.b2nd")
    ref.client(("cli@example.com", "clipassword"))
    su = ref.client(("clisu@example.com", "clisupass1"))
    assert {u["email"]: u for u in su.listusers()}["clisu@example.com"]["is_superuser"] is True
    assert {u["email"]: u for u in su.listusers()}["cli@example.com"]["is_superuser"] is False

    r = run_cli(argv, "listusers", "--statedir", sd)
    assert r.returncode == 0, r.stderr
    lines = {line.split()[1]: line for line in r.stdout.splitlines() if line.strip()}
    assert ours.user_id("cli@example.com") in lines["cli@example.com"]
    assert "superuser" in lines["clisu@example.com"] and "superuser" not in lines["cli@example.com"]
    assert "argon2" not in r.stdout

    # an existing user: nothing changes, the old password still works
    r = run_cli(argv, "adduser", "cli@example.com", "otherpass12", "--statedir", sd)
    assert r.returncode == 0, r.stderr
    ours.client(("cli@example.com", "clipassword"))

    # bad input: non-zero exit, nothing added
    for bad in [("adduser", "not-an-email", "longenough1"), ("adduser", "short@example.com", "short")]:
        r = run_cli(argv, *bad, "--statedir", sd)
        assert r.returncode != 0, (bad, r.stdout)
    assert not {"not-an-email", "short@example.com"} & set(ours.db_users())

    # a generated password is printed, and works
    r = run_cli(argv, "adduser", "gen@example.com", "--statedir", sd)
    assert r.returncode == 0, r.stderr
    generated = [line.split(":", 1)[1].strip() for line in r.stdout.splitlines() if "password" in line.lower()]
    assert len(generated) == 1 and len(generated[0]) >= 8, r.stdout
    ours.client(("gen@example.com", generated[0]))

    # deluser removes the user and their @personal, under the running servers
    home = ours.personal_dir("cli@example.com")
    assert home.is_dir()
    r = run_cli(argv, "deluser", "cli@example.com", "--statedir", sd)
    assert r.returncode == 0, r.stderr
    assert "cli@example.com" not in ours.db_users() and not home.exists()
    for srv in (ours, ref):
        with pytest.raises(httpx.HTTPStatusError) as exc:
            srv.client(("cli@example.com", "clipassword"))
        assert exc.value.response.status_code == 400
    r = run_cli(argv, "deluser", "cli@example.com", "--statedir", sd)
    assert r.returncode != 0, "deleting a user who does not exist is an error"
