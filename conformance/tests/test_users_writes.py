"""Writes and users through the official client, on a server with users (login = true).

One module-scoped server with two users made by the reference's own
``srv_utils.add_user`` while it runs (a superuser, `ADMIN`, and an ordinary
user, `ALICE`), plus an anonymous client.  Every write method of the client is
used (upload of files and in-memory data, directory targets, append, move, copy,
remove) and its result read back through the server and straight from the
state dir, compared with NumPy / python-blosc2.  Also: `@personal` isolation,
401s for anonymous callers, the `@public` superuser-only rule of cat2rs (and
``public_writes = "users"``), user administration, ``maxusers`` and ``quota``.

Protocol references: protocol.md §2, §3, §5.11-5.15, §12 S5, S9-S13, S21, S26.
"""

import io
import pathlib
import socket
import time

import blosc2
import httpx
import numpy as np
import pytest

from loginmode import (IS_REFERENCE, TEMP_PREFIX, RawUpload, cat2rs_only, detail_of, multipart_stream,
                       start_server, status_of)

ADMIN = ("admin@example.com", "adminpass1")
ALICE = ("alice@example.com", "alicepass1")
USER_KEYS = {"id", "email", "is_active", "is_superuser", "is_verified"}
QUOTA_TEXT = "Upload failed because quota limit has been exceeded."




# --------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("users-writes"), settings={"maxusers": 50})
    try:
        s.add_user(*ADMIN, superuser=True)
        s.add_user(*ALICE, superuser=False)
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def admin(srv):
    return srv.client(ADMIN)


@pytest.fixture(scope="module")
def alice(srv):
    return srv.client(ALICE)


@pytest.fixture(scope="module")
def anon(srv):
    # refused uploads are followed by more requests: see test_refused_upload_leaves_the_connection_usable
    return srv.client(keepalive=False)


@pytest.fixture(scope="module")
def cookies(srv, admin, alice):
    return {"admin": admin.cookie, "alice": alice.cookie}


@pytest.fixture
def raw(srv):
    """raw(cookie) -> an httpx client sending that cookie (None: anonymous).

    It does not reuse connections unless asked to (keepalive=True): see
    test_refused_upload_leaves_the_connection_usable.
    """
    def make(cookie=None, keepalive=False):
        return srv.http(cookie, keepalive=keepalive)
    return make


# --------------------------------------------------------------------------------------
# helpers


def disk_path(srv, email, logical):
    """Where a logical path (without the .b2 of regular files) lives in the state dir."""
    root, _, rest = str(logical).partition("/")
    base = {"@public": srv.statedir / "public", "@shared": srv.statedir / "shared"}.get(root)
    if base is None:
        assert root == "@personal"
        base = srv.personal_dir(email)
    return base / rest


def save_b2nd(path, array, **kw):
    blosc2.asarray(array, urlpath=str(path), mode="w", **kw)
    return pathlib.Path(path)


def read_disk(path):
    obj = blosc2.open(str(path), mode="r")
    return obj[()] if obj.ndim == 0 else obj[:]


def cframe(array):
    return blosc2.asarray(np.asarray(array)).to_cframe()


def post_file(http, path, data, filename="upload"):
    return http.post(f"/api/upload/{path}", files={"file": (filename, io.BytesIO(data))})


def temporaries(root):
    return [p for p in pathlib.Path(root).rglob("*") if p.name.startswith(TEMP_PREFIX)]


def expect_status(status, fn, *args, **kw):
    with pytest.raises(httpx.HTTPStatusError) as exc:
        fn(*args, **kw)
    assert status_of(exc) == status, (status_of(exc), detail_of(exc))
    return exc


# --------------------------------------------------------------------------------------
# uploads


UPLOAD_CASES = [("admin", "@personal"), ("admin", "@shared"), ("admin", "@public"),
                ("alice", "@personal"), ("alice", "@shared")]


@pytest.mark.parametrize("who,root", UPLOAD_CASES, ids=[f"{w}-{r[1:]}" for w, r in UPLOAD_CASES])
def test_upload_local_b2nd_is_stored_verbatim(request, srv, tmp_path, who, root):
    client = request.getfixturevalue(who)
    email = ADMIN[0] if who == "admin" else ALICE[0]
    expected = np.arange(600, dtype=np.int32).reshape(20, 30) * 3
    local = save_b2nd(tmp_path / "arr.b2nd", expected, chunks=(7, 11), blocks=(3, 5))
    stored_locally = blosc2.open(str(local), mode="a")
    stored_locally.schunk.vlmeta["who"] = who
    del stored_locally
    remote = f"{root}/up-{who}/local/arr.b2nd"

    obj = client.upload(local, remote)

    assert str(obj.path) == remote
    assert obj.shape == expected.shape and obj.dtype == expected.dtype
    np.testing.assert_array_equal(obj[:], expected)
    np.testing.assert_array_equal(obj[3:9, 20:], expected[3:9, 20:])
    stored = disk_path(srv, email, remote)
    assert stored.read_bytes() == local.read_bytes(), "a .b2nd upload must be stored byte for byte"
    assert f"up-{who}/local/arr.b2nd" in client.get_list(root)
    assert client.get_info(remote)["schunk"]["vlmeta"]["who"] == who


def test_upload_regular_file_is_compressed(srv, admin, tmp_path):
    content = "".join(f"line {i}: the quick brown fox\n" for i in range(20000)).encode()
    local = tmp_path / "notes.txt"
    local.write_bytes(content)

    obj = admin.upload(local, "@shared/docs/notes.txt")

    assert str(obj.path) == "@shared/docs/notes.txt"
    stored = srv.statedir / "shared" / "docs" / "notes.txt.b2"
    assert stored.is_file() and not (srv.statedir / "shared" / "docs" / "notes.txt").exists()
    schunk = blosc2.open(str(stored), mode="r")
    assert schunk[:] == content
    assert stored.stat().st_size < len(content) // 4, "the stored frame should be compressed"
    assert "docs/notes.txt" in admin.get_list("@shared")
    assert not any(n.endswith(".b2") for n in admin.get_list("@shared") if n.startswith("docs/"))
    assert admin.get_info("@shared/docs/notes.txt")["nbytes"] == len(content)
    got = admin.download("@shared/docs/notes.txt", tmp_path / "back.txt")
    assert pathlib.Path(got).read_bytes() == content


def test_upload_file_without_suffix(srv, alice, tmp_path):
    local = tmp_path / "README"
    local.write_bytes(b"# read me\n" * 50)
    alice.upload(local, "@personal/README")
    assert (srv.personal_dir(ALICE[0]) / "README.b2").is_file()
    assert "README" in alice.get_list("@personal")
    assert pathlib.Path(alice.download("@personal/README", tmp_path / "r")).read_bytes() == local.read_bytes()


@pytest.mark.parametrize("root", ["@personal", "@shared", "@public"])
def test_upload_in_memory_arrays(srv, admin, root):
    plain = np.linspace(-1, 1, 35 * 17).reshape(35, 17)
    structured = np.zeros(50, dtype=[("a", "<i4"), ("b", "<f8"), ("c", "S5")])
    structured["a"] = np.arange(50)
    structured["b"] = np.arange(50) / 7
    structured["c"] = [b"x%d" % i for i in range(50)]
    for name, expected in [("plain.b2nd", plain), ("structured.b2nd", structured)]:
        remote = f"{root}/mem/{name}"
        obj = admin.upload(expected, remote)
        assert str(obj.path) == remote
        got = obj[:]
        assert got.dtype == expected.dtype
        assert got.tobytes() == expected.tobytes()
        assert read_disk(disk_path(srv, ADMIN[0], remote)).tobytes() == expected.tobytes()


def test_upload_in_memory_bytes(srv, admin, tmp_path):
    data = b"0123456789abcdef" * 5000
    # a native suffix: the SChunk frame the client makes is stored as it is
    obj = admin.upload(data, "@shared/mem/blob.b2frame")
    assert str(obj.path) == "@shared/mem/blob.b2frame"
    stored = srv.statedir / "shared" / "mem" / "blob.b2frame"
    assert blosc2.open(str(stored), mode="r")[:] == data
    assert admin.get_info("@shared/mem/blob.b2frame")["nbytes"] == len(data)
    # another suffix: the frame is itself a regular file, compressed once more into <name>.b2
    admin.upload(data, "@shared/mem/blob.dat")
    wrapped = srv.statedir / "shared" / "mem" / "blob.dat.b2"
    frame = blosc2.open(str(wrapped), mode="r")[:]
    assert blosc2.schunk_from_cframe(frame)[:] == data
    back = pathlib.Path(admin.download("@shared/mem/blob.dat", tmp_path / "blob.dat")).read_bytes()
    assert blosc2.schunk_from_cframe(back)[:] == data


def test_upload_into_existing_directory(srv, admin, tmp_path):
    admin.upload(np.arange(3), "@shared/dirtarget/seed.b2nd")
    local = save_b2nd(tmp_path / "y.b2nd", np.arange(12.0))

    obj = admin.upload(local, "@shared/dirtarget")
    assert str(obj.path) == "@shared/dirtarget/y.b2nd"
    np.testing.assert_array_equal(obj[:], np.arange(12.0))

    # in-memory data has the multipart file name `upload`, and no native suffix (S12)
    obj = admin.upload(np.arange(5), "@shared/dirtarget")
    assert str(obj.path) == "@shared/dirtarget/upload"
    assert (srv.statedir / "shared" / "dirtarget" / "upload.b2").is_file()
    assert sorted(admin.get_list("@shared/dirtarget")) == ["seed.b2nd", "upload", "y.b2nd"]


def test_upload_trailing_slash_to_missing_path_makes_a_file(srv, raw, cookies):
    http = raw(cookies["alice"])
    r = post_file(http, "@personal/tsdir/", b"some bytes")
    assert r.status_code == 200, r.text
    assert r.json() == "@personal/tsdir"
    assert (srv.personal_dir(ALICE[0]) / "tsdir.b2").is_file()
    assert not (srv.personal_dir(ALICE[0]) / "tsdir").exists()


def test_upload_overwrites(srv, alice):
    alice.upload(np.arange(10), "@personal/ow/a.b2nd")
    obj = alice.upload(np.arange(20, dtype=np.float32) * 2, "@personal/ow/a.b2nd")
    assert obj.shape == (20,)
    np.testing.assert_array_equal(obj[:], np.arange(20, dtype=np.float32) * 2)
    np.testing.assert_array_equal(read_disk(disk_path(srv, ALICE[0], "@personal/ow/a.b2nd")),
                                  np.arange(20, dtype=np.float32) * 2)
    assert temporaries(srv.statedir) == []


def test_upload_unknown_root_is_404(raw, cookies):
    r = post_file(raw(cookies["admin"]), "@nosuchroot/x.b2nd", cframe(np.arange(3)))
    assert r.status_code == 404, r.text


def test_upload_without_file_part_is_422(raw, cookies):
    r = raw(cookies["admin"]).post("/api/upload/@shared/nofile.b2nd", files={"other": ("x", b"123")})
    assert r.status_code == 422, r.text


@cat2rs_only
def test_upload_of_a_non_frame_to_a_native_name_is_refused(srv, raw, cookies, alice):
    alice.upload(np.arange(4), "@personal/bad/keep.b2nd")
    before = disk_path(srv, ALICE[0], "@personal/bad/keep.b2nd").read_bytes()
    r = post_file(raw(cookies["alice"]), "@personal/bad/keep.b2nd", b"not a blosc2 frame at all" * 10)
    assert r.status_code == 400, r.text
    assert disk_path(srv, ALICE[0], "@personal/bad/keep.b2nd").read_bytes() == before
    assert temporaries(srv.statedir) == []


def _damaged_upload(kind, tmp_path):
    """Files that open (their headers are sound) but whose insides are not."""
    if kind in ("b2nd", "b2frame"):
        if kind == "b2nd":
            a = blosc2.asarray(np.arange(4000, dtype="f8"), chunks=(1000,), blocks=(250,),
                               urlpath=str(tmp_path / "a.b2nd"), mode="w")
            sc = a.schunk
        else:
            sc = blosc2.SChunk(chunksize=4000, urlpath=str(tmp_path / "a.b2nd"), mode="w",
                               cparams={"typesize": 4})
            for i in range(4):
                sc.append_data(np.arange(i * 1000, (i + 1) * 1000, dtype="i4").tobytes())
        data = bytearray((tmp_path / "a.b2nd").read_bytes())
        at = data.find(sc.get_chunk(2))
        assert at > 0
        data[at + 12:at + 16] = (1 << 30).to_bytes(4, "little")  # its cbytes: past the file
        return bytes(data), "chunk 2"
    if kind == "h5":
        import h5py
        with h5py.File(tmp_path / "h.h5", "w") as h:
            h["x"] = np.arange(100)
        return (tmp_path / "h.h5").read_bytes()[:96], "not a valid HDF5 file"
    return b"PK\x03\x04" + b"\0" * 200, "not a valid Blosc2 store"


@cat2rs_only
@pytest.mark.parametrize("kind", ["b2nd", "b2frame", "h5", "b2z"])
def test_uploads_are_checked_inside(srv, raw, cookies, alice, tmp_path, kind):
    """Chunk headers of frames, the superblock of an HDF5 file, the directory of a .b2z."""
    data, why = _damaged_upload(kind, tmp_path)
    r = post_file(raw(cookies["alice"]), f"@personal/deep/x.{kind}", data)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert why in detail and f"x.{kind}" in detail, detail
    assert str(srv.statedir) not in r.text
    assert temporaries(srv.statedir) == []


# --------------------------------------------------------------------------------------
# append


def test_append_1d(srv, alice, tmp_path):
    local = save_b2nd(tmp_path / "a.b2nd", np.arange(100, dtype=np.int64), chunks=(30,), blocks=(7,))
    alice.upload(local, "@personal/app/a.b2nd")

    obj = alice.append("@personal/app/a.b2nd", np.arange(100, 150))
    assert obj.shape == (150,)
    obj = alice.append("@personal/app/a.b2nd", [150, 151, 152])
    assert obj.shape == (153,)

    np.testing.assert_array_equal(obj[:], np.arange(153))
    on_disk = blosc2.open(str(disk_path(srv, ALICE[0], "@personal/app/a.b2nd")), mode="r")
    assert on_disk.shape == (153,) and on_disk.chunks == (30,)
    np.testing.assert_array_equal(on_disk[:], np.arange(153))


def test_append_2d_and_structured(srv, admin):
    base = np.arange(40, dtype=np.float64).reshape(10, 4)
    admin.upload(base, "@shared/app/b.b2nd")
    extra = -np.arange(12, dtype=np.float64).reshape(3, 4)
    obj = admin.append("@shared/app/b.b2nd", extra)
    assert obj.shape == (13, 4)
    np.testing.assert_array_equal(obj[:], np.concatenate([base, extra]))

    dt = np.dtype([("a", "<i4"), ("b", "<f8")])
    s = np.array([(i, i / 2) for i in range(8)], dtype=dt)
    admin.upload(s, "@shared/app/s.b2nd")
    more = np.array([(100, 1.5), (101, 2.5)], dtype=dt)
    obj = admin.append("@shared/app/s.b2nd", more)
    assert obj[:].tobytes() == np.concatenate([s, more]).tobytes()


def test_append_errors(srv, admin, raw, cookies):
    admin.upload(np.zeros((10, 4)), "@shared/apperr/m.b2nd")
    admin.upload(b"frame" * 100, "@shared/apperr/f.b2frame")
    http = raw(cookies["admin"])

    def append(path, rows):
        return http.post(f"/api/append/{path}", files={"file": ("upload", io.BytesIO(cframe(rows)))})

    r = append("@shared/apperr/missing.b2nd", np.zeros((1, 4)))
    assert r.status_code == 400 and "Target file does not exist or is not a file" in r.text, r.text
    r = append("@shared/apperr", np.zeros((1, 4)))
    assert r.status_code == 400 and "Target file does not exist or is not a file" in r.text, r.text
    r = append("@shared/apperr/f.b2frame", np.zeros(3))
    assert r.status_code == 400 and "Target file must be a NDArray" in r.text, r.text
    r = append("@shared/apperr/m.b2nd", np.zeros((2, 5)))
    assert r.status_code == 400 and "not compatible" in r.text, r.text
    assert admin.get("@shared/apperr/m.b2nd").shape == (10, 4)
    r = append("@nosuchroot/m.b2nd", np.zeros((1, 4)))
    assert r.status_code == 404, r.text


# --------------------------------------------------------------------------------------
# move, copy


def test_copy_public_dataset_to_personal(srv, admin, alice):
    expected = np.arange(1000, dtype=np.uint16)
    admin.upload(expected, "@public/cp/src.b2nd")
    src_disk = srv.statedir / "public" / "cp" / "src.b2nd"

    obj = alice.copy("@public/cp/src.b2nd", "@personal/cp/dst.b2nd")

    assert str(obj.path) == "@personal/cp/dst.b2nd"
    np.testing.assert_array_equal(obj[:], expected)
    assert disk_path(srv, ALICE[0], "@personal/cp/dst.b2nd").read_bytes() == src_disk.read_bytes()
    np.testing.assert_array_equal(alice.get("@public/cp/src.b2nd")[:], expected)


def test_move_dataset(srv, alice):
    expected = np.arange(64, dtype=np.int8).reshape(8, 8)
    alice.upload(expected, "@shared/mv/a.b2nd")
    before = (srv.statedir / "shared" / "mv" / "a.b2nd").read_bytes()

    obj = alice.move("@shared/mv/a.b2nd", "@shared/mv2/b.b2nd")

    assert str(obj.path) == "@shared/mv2/b.b2nd"
    np.testing.assert_array_equal(obj[:], expected)
    assert (srv.statedir / "shared" / "mv2" / "b.b2nd").read_bytes() == before
    assert not (srv.statedir / "shared" / "mv" / "a.b2nd").exists()
    expect_status(404, alice.get, "@shared/mv/a.b2nd")
    listing = alice.get_list("@shared")
    assert "mv2/b.b2nd" in listing and "mv/a.b2nd" not in listing


def test_move_and_copy_regular_file_keep_b2(srv, alice, tmp_path):
    content = b"regular file contents\n" * 300
    local = tmp_path / "notes.txt"
    local.write_bytes(content)
    alice.upload(local, "@personal/mvf/notes.txt")
    home = srv.personal_dir(ALICE[0])

    obj = alice.copy("@personal/mvf/notes.txt", "@personal/mvf/copy.txt")
    assert str(obj.path) == "@personal/mvf/copy.txt"
    assert (home / "mvf" / "copy.txt.b2").is_file() and not (home / "mvf" / "copy.txt").exists()

    obj = alice.move("@personal/mvf/copy.txt", "@shared/mvf2/renamed.md")
    assert str(obj.path) == "@shared/mvf2/renamed.md"
    assert (srv.statedir / "shared" / "mvf2" / "renamed.md.b2").is_file()
    assert not (home / "mvf" / "copy.txt.b2").exists()
    got = pathlib.Path(alice.download("@shared/mvf2/renamed.md", tmp_path / "r.md")).read_bytes()
    assert got == content
    assert sorted(alice.get_list("@personal/mvf")) == ["notes.txt"]


def test_copy_to_a_name_without_suffix_makes_a_directory(srv, admin):
    admin.upload(np.arange(7), "@shared/s13/x.b2nd")
    obj = admin.copy("@shared/s13/x.b2nd", "@shared/s13new")
    assert str(obj.path) == "@shared/s13new/x.b2nd"
    assert (srv.statedir / "shared" / "s13new" / "x.b2nd").is_file()
    # an existing directory, even one whose name has a suffix
    admin.upload(np.arange(2), "@shared/s13dir.d/seed.b2nd")
    obj = admin.copy("@shared/s13/x.b2nd", "@shared/s13dir.d")
    assert str(obj.path) == "@shared/s13dir.d/x.b2nd"
    np.testing.assert_array_equal(obj[:], np.arange(7))


def test_copy_and_move_directories(srv, alice, tmp_path):
    alice.upload(np.arange(5), "@personal/tree/a.b2nd")
    local = tmp_path / "b.txt"
    local.write_bytes(b"bee\n" * 10)
    alice.upload(local, "@personal/tree/sub/b.txt")

    obj = alice.copy("@personal/tree", "@shared/treecopy")
    assert str(obj.path) == "@shared/treecopy/tree"
    assert sorted(alice.get_list("@shared/treecopy")) == ["tree/a.b2nd", "tree/sub/b.txt"]
    assert sorted(alice.get_list("@personal/tree")) == ["a.b2nd", "sub/b.txt"]

    alice.move("@personal/tree", "@personal/moved")
    assert sorted(alice.get_list("@personal/moved")) == ["tree/a.b2nd", "tree/sub/b.txt"]
    assert alice.get_list("@personal/tree") == []
    np.testing.assert_array_equal(alice.get("@personal/moved/tree/a.b2nd")[:], np.arange(5))


def test_move_copy_errors(srv, admin, raw, cookies):
    admin.upload(np.arange(3), "@shared/mverr/x.b2nd")
    http = raw(cookies["admin"])
    for op, verb in [("move", "moving"), ("copy", "copying")]:
        for dst in ["..", ".", "foo", "foo/bar"]:
            r = http.post(f"/api/{op}/", json={"src": "@shared/mverr/x.b2nd", "dst": dst})
            assert r.status_code == 400, (op, dst, r.text)
            assert f"Only {verb} to @personal or @shared or @public roots is allowed" in r.text
        r = http.post(f"/api/{op}/", json={"src": "shared/mverr/x.b2nd", "dst": "@shared/y.b2nd"})
        assert r.status_code == 400 and f"Only {verb} from" in r.text, r.text
        r = http.post(f"/api/{op}/", json={"src": "@shared/mverr/missing.b2nd", "dst": "@shared/y.b2nd"})
        assert r.status_code == 404, (op, r.text)
        r = http.post(f"/api/{op}/", json={"src": "@publicfoo/x.b2nd", "dst": "@shared/y.b2nd"})
        assert r.status_code == 404, (op, r.text)
        r = http.post(f"/api/{op}/", json={"src": "@shared/mverr/x.b2nd"})
        assert r.status_code == 422, (op, r.text)
    assert (srv.statedir / "shared" / "mverr" / "x.b2nd").is_file()
    assert not (srv.statedir / "shared" / "y.b2nd").exists()


# --------------------------------------------------------------------------------------
# remove


def test_remove_dataset_and_regular_file(srv, alice, tmp_path):
    alice.upload(np.arange(9), "@personal/rm/a.b2nd")
    local = tmp_path / "t.txt"
    local.write_bytes(b"text")
    alice.upload(local, "@personal/rm/t.txt")
    home = srv.personal_dir(ALICE[0])

    assert str(alice.remove("@personal/rm/a.b2nd")) == "@personal/rm/a.b2nd"
    assert not (home / "rm" / "a.b2nd").exists()
    expect_status(404, alice.get, "@personal/rm/a.b2nd")

    assert str(alice.remove("@personal/rm/t.txt")) == "@personal/rm/t.txt"
    assert not (home / "rm" / "t.txt.b2").exists()
    assert alice.get_list("@personal/rm") == []


def test_remove_directory_removes_the_directory_itself(srv, admin):
    admin.upload(np.arange(3), "@shared/rmdir/a/b.b2nd")
    admin.upload(np.arange(3), "@shared/rmdir/c.b2nd")
    assert str(admin.remove("@shared/rmdir")) == "@shared/rmdir"
    assert not (srv.statedir / "shared" / "rmdir").exists()
    assert not any(n.startswith("rmdir/") for n in admin.get_list("@shared"))


def test_remove_missing_is_404(raw, cookies):
    http = raw(cookies["alice"])
    r = http.post("/api/remove/@personal/never/was.b2nd")
    assert r.status_code == 404 and "The specified path does not exist" in r.text, r.text
    r = http.post("/api/remove/@nosuchroot/x")
    assert r.status_code == 404, r.text


# --------------------------------------------------------------------------------------
# @personal isolation


def test_personal_is_per_user(srv, admin, alice):
    mine, hers = np.arange(10), np.arange(10) * -1.5
    admin.upload(mine, "@personal/same/data.b2nd")
    alice.upload(hers, "@personal/same/data.b2nd")
    admin.upload(np.arange(4), "@personal/adminonly/secret.b2nd")

    np.testing.assert_array_equal(admin.get("@personal/same/data.b2nd")[:], mine)
    np.testing.assert_array_equal(alice.get("@personal/same/data.b2nd")[:], hers)
    assert srv.user_id(ADMIN[0]) != srv.user_id(ALICE[0])
    np.testing.assert_array_equal(read_disk(srv.personal_dir(ADMIN[0]) / "same" / "data.b2nd"), mine)
    np.testing.assert_array_equal(read_disk(srv.personal_dir(ALICE[0]) / "same" / "data.b2nd"), hers)

    assert "adminonly/secret.b2nd" in admin.get_list("@personal")
    assert not any(n.startswith("adminonly") for n in alice.get_list("@personal"))
    expect_status(404, alice.get, "@personal/adminonly/secret.b2nd")
    expect_status(404, alice.remove, "@personal/adminonly/secret.b2nd")
    expect_status(404, alice.copy, "@personal/adminonly/secret.b2nd", "@shared/stolen.b2nd")
    expect_status(404, alice.move, "@personal/adminonly/secret.b2nd", "@shared/stolen.b2nd")
    assert (srv.personal_dir(ADMIN[0]) / "adminonly" / "secret.b2nd").is_file()
    assert not (srv.statedir / "shared" / "stolen.b2nd").exists()

    # through @shared, one user can hand a dataset to another
    admin.copy("@personal/adminonly/secret.b2nd", "@shared/handover/secret.b2nd")
    np.testing.assert_array_equal(alice.get("@shared/handover/secret.b2nd")[:], np.arange(4))


# --------------------------------------------------------------------------------------
# anonymous callers


def test_anonymous_writes_are_401(srv, admin, anon, raw, tmp_path):
    admin.upload(np.arange(6), "@public/anon/x.b2nd")
    before = sorted(p.relative_to(srv.statedir) for p in srv.statedir.rglob("*"))
    local = save_b2nd(tmp_path / "l.b2nd", np.arange(3))
    for root in ["@public", "@shared", "@personal"]:
        expect_status(401, anon.upload, local, f"{root}/anon/new.b2nd")
        expect_status(401, anon.upload, np.arange(3), f"{root}/anon/new2.b2nd")
    expect_status(401, anon.copy, "@public/anon/x.b2nd", "@public/anon/y.b2nd")
    expect_status(401, anon.move, "@public/anon/x.b2nd", "@public/anon/y.b2nd")
    expect_status(401, anon.remove, "@public/anon/x.b2nd")
    # (the client's own append cannot run without a cookie: it sends a None header)
    r = raw(None).post("/api/append/@public/anon/x.b2nd", files={"file": ("upload", io.BytesIO(cframe(np.arange(2))))})
    assert r.status_code == 401, r.text
    r = raw(None).post("/api/remove/@public/anon/x.b2nd")
    assert r.status_code == 401, r.text
    assert sorted(p.relative_to(srv.statedir) for p in srv.statedir.rglob("*")) == before
    np.testing.assert_array_equal(anon.get("@public/anon/x.b2nd")[:], np.arange(6))


def test_anonymous_reads_of_shared_and_personal_are_401(srv, admin, anon, raw):
    admin.upload(np.arange(5), "@shared/private/x.b2nd")
    admin.upload(np.arange(5), "@personal/private/x.b2nd")
    http = raw(None)
    for root in ["@shared", "@personal"]:
        for url in [f"/api/list/{root}", f"/api/info/{root}/private/x.b2nd", f"/api/fetch/{root}/private/x.b2nd",
                    f"/api/download/{root}/private/x.b2nd", f"/api/list/{root}/private"]:
            r = http.get(url)
            assert r.status_code == 401, (url, r.status_code, r.text)
        expect_status(401, anon.get_list, root)
    assert http.get("/api/list/@public").status_code == 200


@pytest.mark.parametrize("cookie", ["c2subauth=garbage", "c2subauth=", "other=1",
                                    # a well-formed HS256 token signed with another key
                                    "c2subauth=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMDAwMDAwMC0wMDAw"
                                    "LTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAiLCJhdWQiOlsiZmFzdGFwaS11c2VyczphdXRoIl0sImV4cCI6"
                                    "NDEwMjQ0NDgwMH0.8kJ9a9Lr4bQ3p7V0yXz1kS2w5aQ0m7n8t6u5v4w3x2y"],
                         ids=["garbage", "empty", "other-cookie", "foreign-jwt"])
def test_bad_cookie_is_anonymous(raw, cookie):
    http = raw(cookie)
    assert http.get("/api/list/@personal").status_code == 401
    assert post_file(http, "@shared/badcookie.b2nd", cframe(np.arange(3))).status_code == 401
    assert http.get("/api/listusers/").status_code == 401
    assert http.get("/api/list/@public").status_code == 200


def test_forged_token_for_existing_user_is_refused(srv, raw):
    """A JWT with a real user's id, the right audience, but signed with a wrong key."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    claims = {"sub": srv.user_id(ADMIN[0]), "aud": ["fastapi-users:auth"], "exp": 4102444800}
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    good = hmac.new(srv.secret.encode(), head.encode(), hashlib.sha256).digest()
    bad = hmac.new(b"not-the-secret", head.encode(), hashlib.sha256).digest()
    assert raw(f"c2subauth={head}.{b64(bad)}").get("/api/list/@personal").status_code == 401
    # the same claims signed with the server's secret are a session, as with fastapi-users' JWTs
    assert raw(f"c2subauth={head}.{b64(good)}").get("/api/list/@personal").status_code == 200


def early_answer_outcomes(srv, path, cookie, body_size, expected_status, rounds=3):
    """Send an upload's headers, let the server answer (or not) before the body, then reuse the connection.

    Returns one outcome per round: "ok..." or what went wrong.
    """
    body = b"".join(multipart_stream(RawUpload.BOUNDARY, "upload", [bytes(body_size)]))
    cookie_line = f"Cookie: {cookie}\r\n" if cookie else ""
    outcomes = []
    for _ in range(rounds):
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        reader = ResponseReader(sock)
        try:
            sock.sendall((f"POST /api/upload/{path} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n{cookie_line}"
                          f"Content-Type: multipart/form-data; boundary={RawUpload.BOUNDARY}\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode())
            first = reader.read(timeout=2)  # None: the server waits for the body (as the reference does)
            time.sleep(0.2)  # what a busy client or network does: the server is done with the request first
            try:
                sock.sendall(body)
            except OSError as e:
                outcomes.append(f"body refused after an early {first and first[0]} without Connection: close: {e!r}")
                continue
            if first is None:
                first = reader.read(timeout=10)
            assert first is not None and first[0] == expected_status, first
            if first[1].get("connection", "").lower() == "close":
                outcomes.append("ok (close announced)")
                continue
            try:
                sock.sendall(f"GET /api/list/@public HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n\r\n".encode())
                second = reader.read(timeout=10)
            except OSError as e:
                second = e
            outcomes.append("ok" if isinstance(second, tuple) and second[0] == 200
                            else f"next request on the kept-alive connection: {second!r}")
        finally:
            sock.close()
    return outcomes


@pytest.mark.direct_connection
def test_refused_upload_leaves_the_connection_usable(srv):
    """An answer given before the request body was read must not break the next request.

    Deterministic form of a race seen with the official client: the headers of
    an anonymous upload go first, the body only after the server had its chance
    to answer (401), then a second request follows on the same connection.  A
    server may answer early and close, but then it must say `Connection: close`;
    otherwise httpx (like any HTTP/1.1 client) reuses the connection and the next
    request fails with "Server disconnected without sending a response".
    """
    outcomes = early_answer_outcomes(srv, "@shared/early/x.b2nd", None, 300_000, 401)
    assert all(o.startswith("ok") for o in outcomes), outcomes


class ResponseReader:
    """Reads HTTP/1.1 responses (Content-Length bodies) off a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed by the server")
        self.buf += data

    def read(self, timeout):
        """(status, {header: value}, body), or None if nothing began within *timeout* s."""
        self.sock.settimeout(timeout)
        try:
            while b"\r\n\r\n" not in self.buf:
                self._fill()
        except socket.timeout:
            if not self.buf:
                return None
            raise
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body


# --------------------------------------------------------------------------------------
# @public: superusers only (cat2rs default), any user with public_writes = "users"


@cat2rs_only
def test_public_writes_are_for_superusers(srv, admin, alice, raw, cookies, tmp_path):
    admin.upload(np.arange(8), "@public/pw/x.b2nd")
    admin.upload(np.arange(8), "@shared/pw/s.b2nd")
    alice.upload(np.arange(8), "@personal/pw/p.b2nd")
    public = srv.statedir / "public" / "pw"
    before = {p.name: p.read_bytes() for p in public.iterdir()}
    local = save_b2nd(tmp_path / "n.b2nd", np.arange(3))

    def refused(fn, *args):
        with pytest.raises(httpx.HTTPStatusError) as exc:
            fn(*args)
        assert status_of(exc) in (401, 403), (fn.__name__, args, status_of(exc), detail_of(exc))

    refused(alice.upload, local, "@public/pw/new.b2nd")
    refused(alice.upload, np.arange(3), "@public/pw/x.b2nd")
    refused(alice.upload, np.arange(3), "@public/pw")
    refused(alice.append, "@public/pw/x.b2nd", np.arange(2))
    refused(alice.remove, "@public/pw/x.b2nd")
    refused(alice.remove, "@public/pw")
    refused(alice.copy, "@shared/pw/s.b2nd", "@public/pw/c.b2nd")
    refused(alice.move, "@personal/pw/p.b2nd", "@public/pw/m.b2nd")
    refused(alice.move, "@public/pw/x.b2nd", "@personal/pw/taken.b2nd")
    # raw, with the answer's text
    r = post_file(raw(cookies["alice"]), "@public/pw/raw.b2nd", cframe(np.arange(2)))
    assert r.status_code in (401, 403) and "superuser" in r.text, r.text

    assert {p.name: p.read_bytes() for p in public.iterdir()} == before
    assert (srv.personal_dir(ALICE[0]) / "pw" / "p.b2nd").is_file()
    assert (srv.statedir / "shared" / "pw" / "s.b2nd").is_file()
    # reading and copying out of @public stay open to users
    obj = alice.copy("@public/pw/x.b2nd", "@personal/pw/fromp.b2nd")
    np.testing.assert_array_equal(obj[:], np.arange(8))
    # and the superuser may do all of it
    admin.append("@public/pw/x.b2nd", np.arange(2))
    admin.move("@public/pw/x.b2nd", "@public/pw/y.b2nd")
    assert str(admin.remove("@public/pw/y.b2nd")) == "@public/pw/y.b2nd"


def test_public_writes_users_setting(tmp_path_factory, tmp_path):
    s = start_server(tmp_path_factory.mktemp("public-users"), settings={"public_writes": "users"})
    try:
        s.add_user("bob@example.com", "bobpassword", superuser=False)
        bob, anon = s.client(("bob@example.com", "bobpassword")), s.client()
        local = save_b2nd(tmp_path / "b.b2nd", np.arange(30).reshape(5, 6))
        obj = bob.upload(local, "@public/bob/b.b2nd")
        assert str(obj.path) == "@public/bob/b.b2nd"
        assert (s.statedir / "public" / "bob" / "b.b2nd").read_bytes() == local.read_bytes()
        np.testing.assert_array_equal(anon.get("@public/bob/b.b2nd")[:], np.arange(30).reshape(5, 6))
        bob.append("@public/bob/b.b2nd", np.zeros((1, 6), dtype=np.int64))
        bob.copy("@public/bob/b.b2nd", "@public/bob/c.b2nd")
        bob.move("@public/bob/c.b2nd", "@public/bob2/c.b2nd")
        assert anon.get("@public/bob2/c.b2nd").shape == (6, 6)
        assert str(bob.remove("@public/bob")) == "@public/bob"
        assert anon.get_list("@public") == ["bob2/c.b2nd"]
        expect_status(401, anon.upload, np.arange(2), "@public/anon.b2nd")
    finally:
        s.close()


# --------------------------------------------------------------------------------------
# users


def test_listusers(srv, admin, alice, anon, raw, cookies):
    users = alice.listusers()
    byemail = {u["email"]: u for u in users}
    assert {ADMIN[0], ALICE[0]} <= set(byemail)
    db = srv.db_users()
    for u in users:
        assert set(u) == USER_KEYS, u
        row = db[u["email"]]
        assert u["id"] == row["id"]
        assert u["is_superuser"] == bool(row["is_superuser"])
        assert u["is_active"] is True
    assert byemail[ADMIN[0]]["is_superuser"] is True and byemail[ALICE[0]]["is_superuser"] is False
    r = raw(cookies["alice"]).get("/api/listusers/")
    assert r.status_code == 200
    assert "hashed_password" not in r.text and "$argon2" not in r.text
    one = admin.listusers(ALICE[0])
    assert [u["email"] for u in one] == [ALICE[0]]
    assert admin.listusers("nobody@example.com") == []
    expect_status(401, anon.listusers)


def test_user_administration_needs_a_superuser(srv, alice, anon, raw, cookies):
    exc = expect_status(401, alice.adduser, "mallory@example.com", "mallorypass", True)
    assert "Only superusers can add users" in str(detail_of(exc))
    exc = expect_status(401, alice.deluser, ADMIN[0])
    assert "Only superusers can delete users" in str(detail_of(exc))
    expect_status(401, anon.adduser, "mallory@example.com", "mallorypass", True)
    expect_status(401, anon.deluser, ADMIN[0])
    db = srv.db_users()
    assert "mallory@example.com" not in db and ADMIN[0] in db


def test_adduser_login_and_deluser(srv, admin, tmp_path):
    carol = ("carol@example.com", "carolpass1")
    msg = admin.adduser(*carol)
    assert msg.startswith("User added: username='carol@example.com'") and "superuser=False" in msg, msg
    if not IS_REFERENCE:
        assert carol[1] not in msg, "cat2rs does not echo the password"
    row = srv.db_users()[carol[0]]
    assert row["hashed_password"].startswith("$argon2id$") and not row["is_superuser"]

    c = srv.client(carol)
    c.upload(np.arange(11), "@personal/mine.b2nd")
    home = srv.personal_dir(carol[0])
    assert (home / "mine.b2nd").is_file()
    old_id = row["id"]

    assert admin.deluser(carol[0]) == f"User deleted: {carol[0]}"
    assert carol[0] not in srv.db_users()
    assert not home.exists(), "deleting a user removes their @personal"
    # the old session names a user that is gone: anonymous now
    expect_status(401, c.get_list, "@personal")
    with pytest.raises(httpx.HTTPStatusError) as exc:
        srv.client(carol)
    assert status_of(exc) == 400

    # the same e-mail again is a new user with an empty @personal
    admin.adduser(carol[0], "carolpass2", True)
    c2 = srv.client((carol[0], "carolpass2"))
    assert srv.user_id(carol[0]) != old_id
    assert c2.get_list("@personal") == []
    assert {u["email"]: u for u in admin.listusers()}[carol[0]]["is_superuser"] is True


def test_adduser_existing_is_a_noop(srv, admin):
    msg = admin.adduser(ALICE[0], "someotherpass", False)
    assert msg.startswith(f"User added: username='{ALICE[0]}'"), msg
    srv.client(ALICE)  # the old password still works
    with pytest.raises(httpx.HTTPStatusError) as exc:
        srv.client((ALICE[0], "someotherpass"))
    assert status_of(exc) == 400
    assert sum(1 for u in admin.listusers() if u["email"] == ALICE[0]) == 1


def test_adduser_and_deluser_errors(srv, admin):
    exc = expect_status(400, admin.adduser, "notanemail", "longenough1")
    assert "Error in adding notanemail" in str(detail_of(exc))
    exc = expect_status(400, admin.adduser, "dave@example.com", "short")
    assert "Error in adding dave@example.com" in str(detail_of(exc))
    assert "InvalidPasswordException" in str(detail_of(exc))
    exc = expect_status(400, admin.deluser, "ghost@example.com")
    assert "UserNotExists" in str(detail_of(exc))
    assert not {"notanemail", "dave@example.com"} & set(srv.db_users())


def test_adduser_without_password(srv, admin):
    msg = admin.adduser("erin@example.com", None, False)
    assert msg.startswith("User added: username='erin@example.com'"), msg
    row = srv.db_users()["erin@example.com"]
    assert row["hashed_password"].startswith("$argon2id$")


def test_maxusers(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("maxusers"), settings={"maxusers": 3})
    try:
        s.add_user("root@example.com", "rootpass1", superuser=True)
        s.add_user("u1@example.com", "u1password", superuser=False)
        root = s.client(("root@example.com", "rootpass1"))
        assert root.adduser("u2@example.com", "u2password").startswith("User added")
        exc = expect_status(400, root.adduser, "u3@example.com", "u3password")
        assert detail_of(exc) == "Only a maximum of 3 users are allowed"
        assert len(root.listusers()) == 3 and "u3@example.com" not in s.db_users()
        root.deluser("u2@example.com")
        assert root.adduser("u3@example.com", "u3password").startswith("User added")
        s.client(("u3@example.com", "u3password"))
    finally:
        s.close()


# --------------------------------------------------------------------------------------
# quota


@pytest.fixture(scope="module")
def quota_srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("quota"), settings={"quota": "256K"})
    try:
        s.add_user("q@example.com", "qpassword", superuser=True)
        yield s
    finally:
        s.close()


def incompressible(nbytes, seed):
    return np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8)


def test_quota_refuses_what_does_not_fit(quota_srv, tmp_path):
    s = quota_srv
    c = s.client(("q@example.com", "qpassword"), keepalive=False)
    small = incompressible(40_000, 1)
    c.upload(small, "@personal/q/small.b2nd")
    listing = sorted(c.get_list("@personal"))
    files = sorted(p for p in s.statedir.rglob("*") if p.is_file())

    big = incompressible(400_000, 2)
    for target in ["@personal/q/big.b2nd", "@shared/q/big.b2nd", "@personal/q/small.b2nd"]:
        exc = expect_status(400, c.upload, big, target)
        assert QUOTA_TEXT in str(detail_of(exc)) or QUOTA_TEXT in exc.value.response.text
    local = tmp_path / "big.txt"
    local.write_bytes(incompressible(400_000, 3).tobytes())
    exc = expect_status(400, c.upload, local, "@shared/q/big.txt")
    assert QUOTA_TEXT in exc.value.response.text

    assert sorted(c.get_list("@personal")) == listing
    assert c.get_list("@shared") == []
    assert sorted(p for p in s.statedir.rglob("*") if p.is_file()) == files, "nothing may be left behind"
    np.testing.assert_array_equal(c.get("@personal/q/small.b2nd")[:], small)


@pytest.mark.direct_connection
def test_quota_refusal_leaves_the_connection_usable(quota_srv):
    """As test_refused_upload_leaves_the_connection_usable, for an upload refused by the quota."""
    cookie = quota_srv.login_cookie("q@example.com", "qpassword")
    outcomes = early_answer_outcomes(quota_srv, "@personal/q/early.b2nd", cookie, 400_000, 400)
    assert all(o.startswith("ok") for o in outcomes), outcomes


def usage(statedir):
    """Bytes the quota counts: every file of the state dir but the top-level db.json and db.sqlite."""
    return sum(p.stat().st_size for p in statedir.rglob("*")
               if p.is_file() and not (p.parent == statedir and p.name in ("db.json", "db.sqlite")))


def test_quota_counts_an_upload_once(tmp_path_factory):
    """Quota = state dir size *after* the write (protocol.md §5.11, S26): an upload that fits is taken."""
    s = start_server(tmp_path_factory.mktemp("quota-once"), settings={"quota": "300K"})
    try:
        s.add_user("q@example.com", "qpassword", superuser=True)
        c = s.client(("q@example.com", "qpassword"))
        data = cframe(incompressible(180_000, 4))
        assert usage(s.statedir) + len(data) < 300 * 1024 < usage(s.statedir) + 2 * len(data)
        r = post_file(s.http(c.cookie), "@personal/fits.b2nd", data)
        assert r.status_code == 200, f"{len(data)} bytes into a {300 * 1024}-byte quota: {r.status_code} {r.text}"
    finally:
        s.close()


def test_quota_replacing_a_file_counts_the_net_size(tmp_path_factory):
    """The reference subtracts the size of the file an upload replaces."""
    s = start_server(tmp_path_factory.mktemp("quota-replace"), settings={"quota": "300K"})
    try:
        s.add_user("q@example.com", "qpassword", superuser=True)
        c = s.client(("q@example.com", "qpassword"))
        first = cframe(incompressible(180_000, 5))
        http = s.http(c.cookie)
        # placed behind the server's back (the harness does the same), so only the replacement is judged
        home = s.statedir / "personal" / s.user_id("q@example.com")
        home.mkdir(parents=True, exist_ok=True)
        (home / "same.b2nd").write_bytes(first)
        second = cframe(incompressible(180_000, 6))
        r = post_file(http, "@personal/same.b2nd", second)
        assert r.status_code == 200, r.text
        assert (home / "same.b2nd").read_bytes() == second
    finally:
        s.close()
