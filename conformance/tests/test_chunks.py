"""GET /api/chunk: one stored chunk, byte-identical to `blosc2.open(file).schunk.get_chunk(n)`."""

import blosc2
import numpy as np
import pytest

import make_fixtures
from helpers import ARRAYS, FILES, SCHUNKS, open_local


def _nchunk_samples(n):
    return sorted({0, n // 2, n - 1}) if n > 0 else []


def _params(fixtures):
    out = []
    for f in fixtures:
        n = make_fixtures.geometry(f)[3]
        out += [pytest.param(f, i, id=f"{f.id}[{i}]") for i in _nchunk_samples(n)]
    return out


@pytest.mark.parametrize("fixture, nchunk", _params(ARRAYS))
def test_get_chunk_array(client, server, fixture, nchunk):
    local = open_local(server, fixture)  # keep the NDArray alive while its schunk is used
    expected = local.schunk.get_chunk(nchunk)
    assert client.get_chunk(fixture.logical, nchunk) == expected


@pytest.mark.parametrize("fixture, nchunk", _params(SCHUNKS))
def test_get_chunk_schunk(client, server, fixture, nchunk):
    expected = open_local(server, fixture).get_chunk(nchunk)
    assert client.get_chunk(fixture.logical, nchunk) == expected


@pytest.mark.parametrize("fixture", FILES, ids=[f.id for f in FILES])
def test_get_chunk_regular_file_raw(http, server, fixture):
    # the client refuses get_chunk on a File; the endpoint serves the .b2 SChunk's chunk
    r = http.get(f"/api/chunk/{fixture.logical}", params={"nchunk": 0})
    assert r.status_code == 200
    assert r.content == open_local(server, fixture).get_chunk(0)


def test_get_chunk_decompresses(client, server):
    fixture = make_fixtures.by_id()["public/dims/1d.b2nd"]
    chunk = client.get_chunk(fixture.logical, 1)
    out = np.empty(350, dtype="i8")  # extended chunk: 300 padded up to a multiple of 70
    blosc2.decompress2(chunk, dst=out)
    assert (out[:300] == open_local(server, fixture)[300:600]).all()


def test_get_chunk_every_chunk(client, server):
    fixture = make_fixtures.by_id()["public/special/mixed.b2nd"]
    local = open_local(server, fixture)
    for i in range(local.schunk.nchunks):
        assert client.get_chunk(fixture.logical, i) == local.schunk.get_chunk(i), i


def test_get_chunk_missing_param(http):
    r = http.get("/api/chunk/@public/dims/1d.b2nd")
    assert r.status_code == 422
