"""Error answers of the read API.  None may be a 500 (checked for every test by conftest)."""

import http.client
import urllib.parse

import httpx
import pytest

from helpers import ARRAYS


def _raw(server, method, path):
    """Send *path* exactly as given (httpx would normalise `..` away)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        body = r.read()
        if r.status >= 500:
            server.errors.append((method, path, r.status))
        return r.status, body
    finally:
        conn.close()


def _status(call):
    with pytest.raises(httpx.HTTPStatusError) as exc:
        call()
    return exc.value.response.status_code, str(exc.value)


# --- slice_ errors (GET: the client shows the detail on 400)


@pytest.mark.parametrize("bad", ["abc", "1:2:3:4", "1:x", "1.5", "[1]", "1;2"])
def test_bad_slice(http, bad):
    r = http.get("/api/fetch/@public/dims/1d.b2nd", params={"slice_": bad})
    assert r.status_code == 400
    assert "not a slice" in r.json()["detail"]


def test_bad_slice_message_via_client(client):
    # the client puts the detail of a 400 into its exception (protocol.md S17)
    status, message = _status(lambda: client.get_slice("@public/dims/1d.b2nd", "1.5"))
    assert status == 400
    assert "not a slice" in message


@pytest.mark.parametrize("key", [2000, -2000, (0, 100), (5, 60)])
def test_out_of_bounds(client, key):
    path = "@public/dims/1d.b2nd" if isinstance(key, int) else "@public/dims/2d.b2nd"
    status, message = _status(lambda: client.fetch(path, key))
    assert status == 400
    assert "out of bounds" in message


def test_too_many_indices(http):
    r = http.get("/api/fetch/@public/dims/1d.b2nd", params={"slice_": "1, 2"})
    assert r.status_code == 400


@pytest.mark.parametrize("indices, text", [
    ("[[1,5,2000]]", "out of bounds"),
    ("[[true]]", "only integers"),
    ("[{}]", "not an integer"),
    ("nojson", "not JSON"),
    ("{\"a\": 1}", "JSON list"),
    ("[\"1:x\"]", "not a slice"),
])
def test_bad_indices(http, indices, text):
    r = http.get("/api/fetch/@public/dims/1d.b2nd", params={"indices": indices})
    assert r.status_code == 400
    assert text in r.json()["detail"]


def test_indices_with_slice(http):
    r = http.get("/api/fetch/@public/dims/1d.b2nd", params={"indices": "[[1]]", "slice_": "0:3"})
    assert r.status_code == 400
    assert "cannot be combined" in r.json()["detail"]


def test_field_and_filter(http):
    r = http.get("/api/fetch/@public/struct/fields-1d.b2nd", params={"field": "a", "filter": "d"})
    assert r.status_code == 400
    assert "Cannot handle both field and filter" in r.json()["detail"]


@pytest.mark.parametrize("path", ["dims/1d.b2nd", "special/zeros.b2nd", "schunks/hello.b2frame"])
def test_filter_on_plain_array(http, path):
    r = http.get(f"/api/fetch/@public/{path}", params={"filter": "a > 1"})
    assert r.status_code == 400
    assert "not supported" in r.json()["detail"]


@pytest.mark.reference_bug("protocol.md 5.4.3: field= on a non-structured array is a 500 in the reference")
@pytest.mark.parametrize("path", ["dims/1d.b2nd", "schunks/hello.b2frame"])
def test_field_on_plain_array(http, path):
    r = http.get(f"/api/fetch/@public/{path}", params={"field": "a"})
    assert 400 <= r.status_code < 500


@pytest.mark.reference_bug("protocol.md 5.4.3: filter naming a non-boolean field is a 500 in the reference")
def test_filter_non_boolean_field(http):
    r = http.get("/api/fetch/@public/struct/fields-1d.b2nd", params={"filter": "a"})
    assert 400 <= r.status_code < 500


@pytest.mark.reference_bug("not yet in protocol.md: an unknown field name is a 500 in the reference")
def test_unknown_field(http):
    r = http.get("/api/fetch/@public/struct/fields-1d.b2nd", params={"field": "zz"})
    assert 400 <= r.status_code < 500


@pytest.mark.reference_bug("not yet in protocol.md: a filter naming an unknown field is a 500 in the reference")
def test_filter_unknown_name(http):
    r = http.get("/api/fetch/@public/struct/fields-1d.b2nd", params={"filter": "zz > 1"})
    assert 400 <= r.status_code < 500


@pytest.mark.reference_bug("protocol.md 5.6: nchunk out of range is a 500 in the reference")
@pytest.mark.parametrize("nchunk", [4, 99, -100])
def test_chunk_out_of_range(http, nchunk):
    r = http.get("/api/chunk/@public/dims/1d.b2nd", params={"nchunk": nchunk})
    assert 400 <= r.status_code < 500


@pytest.mark.reference_bug("protocol.md 5.9: download of a directory is a 500 in the reference")
def test_download_directory(http):
    r = http.get("/api/download/@public/dims")
    assert 400 <= r.status_code < 500


# --- roots and auth


@pytest.mark.parametrize("endpoint", ["info", "list", "fetch", "download", "chunk"])
def test_unknown_root(http, endpoint):
    params = {"nchunk": 0} if endpoint == "chunk" else None
    r = http.get(f"/api/{endpoint}/@nope/x.b2nd", params=params)
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


def test_unknown_root_via_client(client):
    status, message = _status(lambda: client.get_info("@nope/x.b2nd"))
    assert status == 404
    assert "Not Found" in message


@pytest.mark.parametrize("endpoint, path", [
    ("info", "@shared/secret.b2nd"), ("list", "@shared"), ("fetch", "@shared/secret.b2nd"),
    ("download", "@shared/secret.txt"), ("chunk", "@shared/secret.b2nd"), ("info", "@shared/secret.txt"),
    ("info", "@shared"), ("info", "@personal/x.b2nd"), ("fetch", "@personal/x.b2nd"), ("list", "@personal"),
    ("info", "@shared/missing.b2nd"),
])
def test_private_roots_anonymous(http, endpoint, path):
    params = {"nchunk": 0} if endpoint == "chunk" else None
    r = http.get(f"/api/{endpoint}/{path}", params=params)
    assert r.status_code == 401
    assert r.json() == {"detail": "Unauthorized"}


def test_shared_via_client(client):
    status, message = _status(lambda: client.fetch("@shared/secret.b2nd"))
    assert status == 401
    assert "Unauthorized" in message


def test_shared_invalid_cookie(server):
    with httpx.Client(base_url=server.url, event_hooks={"response": [server.hook]}) as c:
        r = c.get("/api/info/@shared/secret.b2nd", headers={"Cookie": "c2subauth=not-a-token"})
    assert r.status_code == 401


# --- `..` and odd paths (sent raw so they are not normalised by the client library)


@pytest.mark.parametrize("path", [
    "/api/info/@public/../shared/secret.b2nd",
    "/api/fetch/@public/../../etc/passwd",
    "/api/info/@public/dims/../dims/1d.b2nd",
    "/api/download/@public/../shared/secret.txt",
    "/api/list/@public/..",
    "/api/chunk/@public/../shared/secret.b2nd?nchunk=0",
    "/api/fetch/@public/dims/%2E%2E/%2E%2E/shared/secret.b2nd",
])
def test_dotdot_refused(server, path):
    status, body = _raw(server, "GET", path)
    assert status == 400, body
    assert b"climbs out of" in body


@pytest.mark.parametrize("path", ["/api/info/%40public/dims/1d.b2nd", "/api/info/@public//dims//1d.b2nd",
                                  "/api/info/@public/dir%20with%20space/my%20array.b2nd"])
def test_path_normalisation(server, path):
    status, _ = _raw(server, "GET", path)
    assert status == 200


# --- missing files


@pytest.mark.parametrize("endpoint, path", [
    ("info", "@public/missing.b2nd"), ("info", "@public/missing.txt"), ("info", "@public/dims/missing.b2frame"),
    ("fetch", "@public/missing.b2nd"), ("fetch", "@public/dims/missing.b2frame"),
    ("download", "@public/missing.txt"), ("download", "@public/missing.b2nd"),
    ("chunk", "@public/missing.b2nd"),
])
def test_missing(http, endpoint, path):
    params = {"nchunk": 0} if endpoint == "chunk" else None
    r = http.get(f"/api/{endpoint}/{path}", params=params)
    assert r.status_code == 404


def test_missing_via_client(client):
    status, message = _status(lambda: client.get("@public/missing.b2nd"))
    assert status == 404
    assert "Not Found" in message


# --- fetching something that is not a dataset


@pytest.mark.parametrize("path", ["@public/notes.txt", "@public/README.md", "@public/noext", "@public/my notes.txt"])
def test_fetch_regular_file(http, path):
    r = http.get(f"/api/fetch/{urllib.parse.quote(path)}")
    assert r.status_code == 400
    assert "only supports datasets" in r.json()["detail"]


def test_head_not_allowed(http):
    r = http.head("/api/info/@public/dims/1d.b2nd")
    assert r.status_code == 405


@pytest.mark.parametrize("fixture", ARRAYS[:1], ids=[f.id for f in ARRAYS[:1]])
def test_error_shape(http, fixture):
    r = http.get(f"/api/fetch/{fixture.logical}", params={"slice_": "abc"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"detail"}
