"""GET /api/roots and GET /api/list through the official client (and raw HTTP)."""

import httpx
import pytest

import make_fixtures
from helpers import FILES, PUBLIC


def test_roots_anonymous(client):
    assert client.get_roots() == {"@public": {"name": "@public"}}


def test_roots_raw(http):
    r = http.get("/api/roots")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"@public": {"name": "@public"}}


def test_list_root(client):
    assert client.get_list("@public") == make_fixtures.public_listing()


def test_root_object(client):
    root = client.get("@public")
    listing = make_fixtures.public_listing()
    assert root.file_list == listing
    assert len(root) == len(listing)
    assert "dims/1d.b2nd" in root
    assert "notes.txt" in root
    assert "nope.b2nd" not in root


def _under(prefix):
    return sorted(f.path[len(prefix) + 1:] for f in PUBLIC if f.path.startswith(prefix + "/"))


@pytest.mark.parametrize("directory", ["dims", "dtypes", "special", "deep", "deep/a/b", "logs", "dir with space",
                                       "schunks"])
def test_list_directory(client, directory):
    expected = _under(directory)
    assert expected
    assert client.get_list(f"@public/{directory}") == expected


def test_list_directory_trailing_slash(http):
    r = http.get("/api/list/@public/dims/")
    assert r.status_code == 200
    assert r.json() == _under("dims")


def test_list_percent_encoded_root(http):
    r = http.get("/api/list/%40public/deep")
    assert r.status_code == 200
    assert r.json() == ["a/b/c/leaf.b2nd"]


@pytest.mark.parametrize("path", ["dims/1d.b2nd", "deep/a/b/c/leaf.b2nd", "schunks/hello.b2frame",
                                  "dir with space/my array.b2nd"])
def test_list_dataset_file(client, path):
    assert client.get_list(f"@public/{path}") == [path.rsplit("/", 1)[-1]]


@pytest.mark.parametrize("fixture", FILES, ids=[f.id for f in FILES])
def test_list_regular_file(client, fixture):
    # protocol.md S7: the reference answers [] for a regular file addressed by its
    # logical name (it does not add `.b2` here); its basename would be as good.
    assert client.get_list(fixture.logical) in ([], [fixture.path.rsplit("/", 1)[-1]])


@pytest.mark.parametrize("path", ["nope", "nope/deeper", "dims/nope.b2nd"])
def test_list_missing_is_empty(client, path):
    assert client.get_list(f"@public/{path}") == []


def test_list_unknown_root(client):
    with pytest.raises(httpx.HTTPStatusError) as exc:
        client.get_list("@nope")
    assert exc.value.response.status_code == 404


@pytest.mark.parametrize("path", ["@shared", "@shared/secret.b2nd", "@personal"])
def test_list_private_roots_anonymous(client, path):
    with pytest.raises(httpx.HTTPStatusError) as exc:
        client.get_list(path)
    assert exc.value.response.status_code == 401
