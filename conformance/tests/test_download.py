"""GET /api/download, File objects for regular files, and byte ranges on whole fetches."""

import email
import io

import blosc2
import httpx
import pytest

import caterva2 as cat2
import make_fixtures
from helpers import DATASETS, FILES, ARRAYS

# --- download through the official client


@pytest.mark.parametrize("fixture", FILES, ids=[f.id for f in FILES])
def test_download_regular_file(client, fixture, tmp_path):
    local = client.download(fixture.logical, tmp_path / "out")
    assert local.read_bytes() == fixture.content
    assert not local.with_suffix(local.suffix + ".b2").exists()


@pytest.mark.parametrize("fixture", DATASETS, ids=[f.id for f in DATASETS])
def test_download_dataset(client, server, fixture, tmp_path):
    name = fixture.path.rsplit("/", 1)[-1]
    local = client.download(fixture.logical, tmp_path / name)
    assert local.name == name
    assert local.read_bytes() == server.local(fixture).read_bytes()
    blosc2.open(str(local))  # opens as a Blosc2 container


def test_download_url(client):
    arr = client.get("@public/dims/1d.b2nd")
    assert arr.get_download_url() == f"{client.urlbase}/api/download/@public/dims/1d.b2nd"


# --- download raw: with and without Accept-Encoding: blosc2


@pytest.mark.parametrize("fixture", FILES, ids=[f.id for f in FILES])
def test_download_raw_plain(http, fixture):
    r = http.get(f"/api/download/{fixture.logical}", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert "content-encoding" not in r.headers or r.headers["content-encoding"] == "identity"
    assert r.content == fixture.content
    name = fixture.path.rsplit("/", 1)[-1]
    assert r.headers["content-disposition"] == f'attachment; filename="{name}"'


@pytest.mark.parametrize("fixture", FILES, ids=[f.id for f in FILES])
def test_download_raw_blosc2(server, fixture):
    # a fresh client: httpx would otherwise try to decode an unknown encoding (it does not; it passes it on)
    with httpx.Client(base_url=server.url, event_hooks={"response": [server.hook]}) as c:
        r = c.get(f"/api/download/{fixture.logical}", headers={"Accept-Encoding": "blosc2"})
    assert r.status_code == 200
    assert r.headers.get("content-encoding") == "blosc2"
    sc = blosc2.schunk_from_cframe(r.content)
    assert b"".join(sc.decompress_chunk(i) for i in range(sc.nchunks)) == fixture.content


@pytest.mark.parametrize("fixture", DATASETS, ids=[f.id for f in DATASETS])
def test_download_raw_dataset_no_encoding(http, server, fixture):
    r = http.get(f"/api/download/{fixture.logical}", headers={"Accept-Encoding": "blosc2"})
    assert r.status_code == 200
    assert "content-encoding" not in r.headers  # protocol.md S24
    assert r.content == server.local(fixture).read_bytes()


@pytest.mark.parametrize("name, mime", [("README.md", "text/markdown"), ("data.json", "application/json"),
                                        ("notes.txt", "text/plain")])
def test_download_content_type(http, name, mime):
    r = http.get(f"/api/download/@public/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == mime


# --- File objects for regular files


@pytest.mark.parametrize("fixture", FILES, ids=[f.id for f in FILES])
def test_file_object_download(client, fixture, tmp_path):
    f = client.get(fixture.logical)
    assert type(f) is cat2.File
    assert f.download(tmp_path / "x").read_bytes() == fixture.content


@pytest.mark.parametrize("fixture", FILES, ids=[f.id for f in FILES])
def test_file_object_read_refused(client, fixture):
    # a regular file is not a dataset: fetch answers 400 (never 500)
    f = client.get(fixture.logical)
    with pytest.raises(httpx.HTTPStatusError) as exc:
        f[0:10]
    assert exc.value.response.status_code == 400
    assert "only supports datasets" in str(exc.value)


def test_file_root_getitem(client):
    root = client.get("@public")
    f = root["notes.txt"]
    assert type(f) is cat2.File
    assert f.meta["nbytes"] == len(make_fixtures.by_id()["public/notes.txt"].content)
    assert isinstance(root["dims/2d.b2nd"], cat2.Array)


# --- byte ranges on a whole (verbatim) fetch


RANGE_FIXTURES = [make_fixtures.by_id()[i] for i in ("public/dims/1d.b2nd", "public/struct/fields-1d.b2nd",
                                                      "public/schunks/int32.b2frame")]


def _ranges(size):
    return [
        ("first-100", "bytes=0-99", 0, 100),
        ("suffix-10", "bytes=-10", size - 10, size),
        ("open-end", "bytes=100-", 100, size),
        ("past-end", f"bytes={size - 5}-{size + 100}", size - 5, size),
        ("one-byte", "bytes=7-7", 7, 8),
        ("whole", f"bytes=0-{size - 1}", 0, size),
    ]


@pytest.mark.parametrize("fixture", RANGE_FIXTURES, ids=[f.id for f in RANGE_FIXTURES])
@pytest.mark.parametrize("case", range(6), ids=["first-100", "suffix-10", "open-end", "past-end", "one-byte",
                                                "whole"])
def test_range_single(http, server, fixture, case):
    data = server.local(fixture).read_bytes()
    _, header, start, stop = _ranges(len(data))[case]
    r = http.get(f"/api/fetch/{fixture.logical}", headers={"Range": header})
    assert r.status_code == 206, r.text
    assert r.headers["content-range"] == f"bytes {start}-{stop - 1}/{len(data)}"
    assert r.content == data[start:stop]


@pytest.mark.parametrize("fixture", RANGE_FIXTURES, ids=[f.id for f in RANGE_FIXTURES])
def test_range_unsatisfiable(http, server, fixture):
    size = server.local(fixture).stat().st_size
    r = http.get(f"/api/fetch/{fixture.logical}", headers={"Range": f"bytes={size}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{size}"


def test_range_multipart(http, server):
    fixture = RANGE_FIXTURES[0]
    data = server.local(fixture).read_bytes()
    r = http.get(f"/api/fetch/{fixture.logical}", headers={"Range": "bytes=0-9,20-29"})
    assert r.status_code == 206
    ctype = r.headers["content-type"]
    assert ctype.startswith("multipart/byteranges")
    msg = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + r.content)
    parts = [(p["Content-Range"], p.get_payload(decode=True)) for p in msg.get_payload()]
    total = len(data)
    assert parts == [(f"bytes 0-9/{total}", data[0:10]), (f"bytes 20-29/{total}", data[20:30])]


def test_range_on_slice_is_416(http):
    r = http.get("/api/fetch/@public/dims/1d.b2nd", params={"slice_": "0:10"}, headers={"Range": "bytes=0-9"})
    assert r.status_code == 416
    assert r.headers.get("accept-ranges") == "none"


def test_range_blosc2_client_reads(server):
    # what blosc2's C2Array / Client.written_chunks do: read the frame header by range
    fixture = RANGE_FIXTURES[0]
    data = server.local(fixture).read_bytes()
    with httpx.Client(base_url=server.url, event_hooks={"response": [server.hook]}) as c:
        head = c.get(f"/api/fetch/{fixture.logical}", headers={"Range": "bytes=0-31"}).content
    assert head == data[:32]
    assert io.BytesIO(head).read(10)[2:10] == b"b2frame\x00"


@pytest.mark.parametrize("fixture", ARRAYS[:1], ids=[f.id for f in ARRAYS[:1]])
def test_fetch_headers_whole(http, server, fixture):
    r = http.get(f"/api/fetch/{fixture.logical}")
    name = fixture.path.rsplit("/", 1)[-1]
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert r.headers.get("etag")
