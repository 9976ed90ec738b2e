"""A server killed (SIGKILL) in the middle of an upload.

300 MB uploads are streamed over a raw socket from a generator (1 MB kept in
memory), one to a name that gets compressed (`notes.txt` -> `notes.txt.b2`) and
one to a name stored verbatim (`data.b2nd`); the server is killed with
``kill -9`` while the body streams in, and once more after the whole body
arrived (while the server compresses it).  After a restart on the same state
dir nothing partial may be listed or served, no temporary file
(``.cat2rs-tmp-*``) may be visible or left behind, and the older dataset at the
same path must be byte-identical.
"""

import os
import time

import blosc2
import numpy as np
import pytest

from loginmode import IS_REFERENCE, TEMP_PREFIX, RawUpload, start_server

SIZE = 300 << 20
ADMIN = ("admin@example.com", "adminpass1")
NOTES = b"".join(b"an older note, line %d\n" % i for i in range(5000))




@pytest.fixture
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("faults"))
    try:
        s.add_user(*ADMIN, superuser=True)
        yield s
    finally:
        s.close()


def temporaries(root):
    return sorted(p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX))


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def receiving(bigdir, at_least):
    """The temporary file an upload streams into, once it holds *at_least* bytes."""
    def pred():
        for p in temporaries(bigdir):
            try:
                if p.stat().st_size >= at_least:
                    return p
            except FileNotFoundError:
                pass
        return None
    return pred


def check_listing_clean(client, expected):
    for root in ["@shared", "@public", "@personal"]:
        names = client.get_list(root)
        assert not any(TEMP_PREFIX in n for n in names), (root, names)
    assert sorted(client.get_list("@shared")) == expected


def kill_mid_body(srv, client, logical, stored):
    """Stream part of a 300 MB upload to *logical*, check what is visible meanwhile, kill -9."""
    before = stored.read_bytes()
    listing = sorted(client.get_list("@shared"))
    up = RawUpload(srv, logical, client.cookie, SIZE, os.urandom(1 << 20))
    try:
        up.send(upto=96 << 20)
        if not IS_REFERENCE:  # cat2rs streams into a temporary file beside the target
            wait_for(receiving(stored.parent, 32 << 20), 30, "the upload's temporary file")
        else:
            time.sleep(1)
        # in flight: the old dataset is what is listed and served
        check_listing_clean(client, listing)
        assert stored.read_bytes() == before
        srv.kill9()
    finally:
        up.close()
    srv.start()
    check_listing_clean(client, listing)
    assert stored.read_bytes() == before, f"{stored.name} changed after a killed upload"
    assert temporaries(srv.statedir) == [], "temporary files survived the restart"
    return before


@pytest.mark.local_state  # watches the state directory's temporary files
def test_kill_during_uploads(srv, tmp_path):
    client = srv.client(ADMIN)
    old = np.arange(100_000, dtype=np.float64).reshape(400, 250)
    client.upload(old, "@shared/big/data.b2nd")
    (tmp_path / "notes.txt").write_bytes(NOTES)
    client.upload(tmp_path / "notes.txt", "@shared/big/notes.txt")
    bigdir = srv.statedir / "shared" / "big"
    data_b2nd, notes_b2 = bigdir / "data.b2nd", bigdir / "notes.txt.b2"

    # 1. compressed name, killed while the body streams in
    kill_mid_body(srv, client, "@shared/big/notes.txt", notes_b2)
    got = client.download("@shared/big/notes.txt", tmp_path / "n1.txt")
    assert open(got, "rb").read() == NOTES

    # 2. verbatim name, the same
    kill_mid_body(srv, client, "@shared/big/data.b2nd", data_b2nd)
    np.testing.assert_array_equal(client.get("@shared/big/data.b2nd")[:], old)

    # 3. compressed name, killed once the whole body is in (while it is being compressed)
    listing = sorted(client.get_list("@shared"))
    before = notes_b2.read_bytes()
    up = RawUpload(srv, "@shared/big/notes.txt", client.cookie, SIZE, os.urandom(1 << 20))
    try:
        up.send()
        assert up.sent == up.total
        if not IS_REFERENCE:
            wait_for(receiving(bigdir, SIZE), 60, "the whole body on disk")
            time.sleep(0.3)
        else:
            time.sleep(1)
        status = up.response_status(0)
        srv.kill9()
        print(f"phase 3: answer before the kill: {status}")
    finally:
        up.close()
    srv.start()
    assert temporaries(srv.statedir) == []
    if status is None:  # killed before it answered: the old file is intact
        assert notes_b2.read_bytes() == before
        check_listing_clean(client, listing)
    else:  # it was quicker than the kill: then the new file is whole
        assert status == 200
        assert blosc2.open(str(notes_b2), mode="r").nbytes == SIZE

    # the restarted server takes writes at the same paths again
    client.upload(np.arange(5), "@shared/big/data.b2nd")
    np.testing.assert_array_equal(client.get("@shared/big/data.b2nd")[:], np.arange(5))
    client.upload(b"fresh", "@shared/big/notes.txt")
    assert temporaries(srv.statedir) == []


@pytest.mark.local_state  # plants temporary files in the state directory
def test_temporaries_are_swept_at_start_up(srv):
    """Leftovers of a crash (temporary names anywhere in the state dir) are removed, not served."""
    if IS_REFERENCE:
        pytest.skip("cat2rs-only: the reference server writes no temporary files into the state dir")
    client = srv.client(ADMIN)
    client.upload(np.arange(3), "@public/keep/x.b2nd")
    planted = [srv.statedir / "public" / f"{TEMP_PREFIX}0123", srv.statedir / "public" / "keep" / f"{TEMP_PREFIX}ab",
               srv.statedir / "shared" / "deep" / "er" / f"{TEMP_PREFIX}cd.b2nd"]
    for p in planted:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blosc2.asarray(np.arange(4)).to_cframe())
    # not listed while they are there
    assert not any(TEMP_PREFIX in n for n in client.get_list("@public") + client.get_list("@shared"))
    srv.stop()
    srv.start()
    assert [p for p in planted if p.exists()] == []
    assert (srv.statedir / "public" / "keep" / "x.b2nd").is_file()
    np.testing.assert_array_equal(client.get("@public/keep/x.b2nd")[:], np.arange(3))


@pytest.mark.local_state  # watches the state directory's temporary files
def test_aborted_upload_leaves_nothing(srv, tmp_path):
    """The client goes away mid-body (no kill): the server drops the partial upload at once."""
    client = srv.client(ADMIN)
    client.upload(np.arange(50), "@shared/ab/x.b2nd")
    stored = srv.statedir / "shared" / "ab" / "x.b2nd"
    before = stored.read_bytes()
    up = RawUpload(srv, "@shared/ab/x.b2nd", client.cookie, 64 << 20, os.urandom(1 << 20))
    try:
        up.send(upto=16 << 20)
        if not IS_REFERENCE:
            wait_for(receiving(stored.parent, 8 << 20), 30, "the upload's temporary file")
    finally:
        up.close()
    wait_for(lambda: not temporaries(srv.statedir), 10, "the partial upload to be removed")
    assert stored.read_bytes() == before
    np.testing.assert_array_equal(client.get("@shared/ab/x.b2nd")[:], np.arange(50))
    assert sorted(client.get_list("@shared")) == ["ab/x.b2nd"]


@pytest.mark.local_state  # plants temporary files in the state directory
@pytest.mark.skipif(IS_REFERENCE, reason="cat2rs-only: the reference server writes no temporary files")
def test_temporary_files_are_not_served(srv):
    """Files under temporary names are cat2rs's own: not listed, not served, not touched by reads.

    (The reference's read-side "compress a raw file into <name>.b2" must not
    apply to them either: it would compress, then delete, a write in progress.)
    """
    client = srv.client(ADMIN)
    frame = blosc2.asarray(np.arange(4)).to_cframe()
    planted = {
        f"@public/{TEMP_PREFIX}0123": srv.statedir / "public" / f"{TEMP_PREFIX}0123",
        f"@shared/t/{TEMP_PREFIX}cd.b2nd": srv.statedir / "shared" / "t" / f"{TEMP_PREFIX}cd.b2nd",
    }
    for p in planted.values():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(frame)
    http = srv.http(client.cookie)
    answers = {}
    for logical in planted:
        for ep in ["info", "download", "fetch"]:
            answers[f"{ep} {logical}"] = http.get(f"/api/{ep}/{logical}").status_code
    # 404 (nothing there) or 400 (a name the server keeps for itself: refused at the edge)
    assert all(code in (400, 404) for code in answers.values()), answers
    assert all(p.read_bytes() == frame for p in planted.values())
    assert sorted(p.name for p in (srv.statedir / "public").iterdir() if p.name.startswith(TEMP_PREFIX)) == \
        [f"{TEMP_PREFIX}0123"], "a read made a new file out of a temporary one"


@pytest.mark.skipif(IS_REFERENCE, reason="cat2rs-only: the reference server has no temporary names")
def test_upload_to_a_temporary_name_is_not_lost(srv):
    """A user's upload named like a temporary file must be refused, or kept like any other."""
    client = srv.client(ADMIN)
    http = srv.http(client.cookie)
    frame = blosc2.asarray(np.arange(6)).to_cframe()
    r = http.post(f"/api/upload/@shared/names/{TEMP_PREFIX}mine.b2nd", files={"file": ("upload", frame)})
    if 400 <= r.status_code < 500:
        return  # refused: fine
    assert r.status_code == 200, r.text
    srv.stop()
    srv.start()
    assert f"names/{TEMP_PREFIX}mine.b2nd" in client.get_list("@shared"), \
        "an upload the server accepted (200) was hidden from listings and/or deleted by the start-up sweep"
