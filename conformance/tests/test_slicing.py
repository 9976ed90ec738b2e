"""GET /api/fetch: slices, steps, fancy indices and whole datasets.

Every value is compared with what python-blosc2 reads from the very file the
server serves (`blosc2.open(path)[key]`).
"""

import blosc2
import numpy as np
import pytest

import make_fixtures
from helpers import (ARRAYS, DATASETS, SCHUNKS, assert_same_array, basic_keys, fancy_keys, np_key, open_local,
                     step_keys)


def _params(fixtures, keyfn):
    out = []
    for f in fixtures:
        shape, chunks, _blocks, _n = make_fixtures.geometry(f)
        for kid, key in keyfn(f, shape, chunks):
            out.append(pytest.param(f, key, id=f"{f.id}[{kid}]"))
    return out


BASIC = _params(ARRAYS, basic_keys)
FANCY = _params(ARRAYS, lambda f, shape, chunks: fancy_keys(shape) if f.group != "codec" else fancy_keys(shape)[:1])
STEPS = _params(ARRAYS, lambda f, shape, chunks: [(k, k) for k in step_keys(shape)])
# a smaller selection for the other client entry points
FEW = [p for p in BASIC if p.id.split("[")[1].rstrip("]") in ("int-mid", "slice-edge-chunk", "mixed", "empty-tuple")]


@pytest.mark.parametrize("fixture, key", BASIC)
def test_getitem(client, server, fixture, key):
    """`Array[key]` (client.get(path)[key]) equals blosc2.open(file)[key]."""
    arr = client.get(fixture.logical)
    expected = open_local(server, fixture)[key]
    assert_same_array(arr[key], expected, fixture)


@pytest.mark.parametrize("fixture, key", FEW)
def test_fetch(client, server, fixture, key):
    expected = open_local(server, fixture)[key]
    assert_same_array(client.fetch(fixture.logical, key), expected, fixture)


@pytest.mark.parametrize("fixture, key", FEW)
def test_get_slice_as_blosc2(client, server, fixture, key):
    expected = open_local(server, fixture)[key]
    got = client.get_slice(fixture.logical, key)
    assert isinstance(got, blosc2.NDArray)
    assert_same_array(got[()] if got.ndim == 0 else got[:], expected, fixture)


@pytest.mark.parametrize("fixture, key", FEW)
def test_array_slice_method(client, server, fixture, key):
    expected = open_local(server, fixture)[key]
    got = client.get(fixture.logical).slice(key)
    assert_same_array(got[()] if got.ndim == 0 else got[:], expected, fixture)


@pytest.mark.parametrize("fixture, key", FANCY)
def test_fancy_indices(client, server, fixture, key):
    """List / ndarray / boolean-mask keys travel as `indices` (NumPy fancy indexing)."""
    arr = client.get(fixture.logical)
    expected = open_local(server, fixture)[()][key]  # NumPy's reading of the key
    assert_same_array(arr[key], expected, fixture)


@pytest.mark.parametrize("fixture, key", STEPS)
def test_step_slice_raw(http, server, fixture, key):
    """The 2026 client refuses steps, but the server accepts them in `slice_` (protocol.md S16)."""
    r = http.get(f"/api/fetch/{fixture.logical}", params={"slice_": key})
    assert r.status_code == 200, r.text
    got = blosc2.ndarray_from_cframe(r.content)
    expected = open_local(server, fixture)[np_key(key)]
    assert_same_array(got[()] if got.ndim == 0 else got[:], expected, fixture)


@pytest.mark.reference_bug("not yet in protocol.md: an integer item together with a stepped slice, "
                           "e.g. `1, ::2` on 2-D, is refused with 400 'too many indices' by the reference")
@pytest.mark.parametrize("key", ["1, ::2", "::2, -1", "0, 1:5:2"])
def test_step_with_int_raw(http, server, key):
    fixture = make_fixtures.by_id()["public/dims/2d.b2nd"]
    r = http.get(f"/api/fetch/{fixture.logical}", params={"slice_": key})
    assert r.status_code == 200, r.text
    got = blosc2.ndarray_from_cframe(r.content)
    assert_same_array(got[:], open_local(server, fixture)[np_key(key)], fixture)


@pytest.mark.parametrize("text", ["0:10", " 2 : 7 ", "5", "-1", "3:", ":4", "0:0", "2:0", "-3:-1"])
def test_slice_string_forms_raw(http, server, text):
    fixture = make_fixtures.by_id()["public/dims/1d.b2nd"]
    r = http.get(f"/api/fetch/{fixture.logical}", params={"slice_": text})
    assert r.status_code == 200, r.text
    got = blosc2.ndarray_from_cframe(r.content)
    key = np_key(text.replace(" ", ""))
    key = key[0] if len(key) == 1 else key
    assert_same_array(got[()] if got.ndim == 0 else got[:], open_local(server, fixture)[key])


def test_string_key_slice_via_client(client, server):
    # a string key that parses as an index goes as `slice_` verbatim
    fixture = make_fixtures.by_id()["public/dims/2d.b2nd"]
    got = client.get_slice(fixture.logical, "1:3, 2")[:]
    assert_same_array(got, open_local(server, fixture)[1:3, 2])


# --- whole datasets: the stored file verbatim (protocol.md S6)


@pytest.mark.parametrize("fixture", DATASETS, ids=[f.id for f in DATASETS])
def test_whole_fetch_is_file_bytes(http, server, fixture):
    r = http.get(f"/api/fetch/{fixture.logical}")
    assert r.status_code == 200
    assert r.content == server.local(fixture).read_bytes()
    assert r.headers.get("accept-ranges") == "bytes"
    assert int(r.headers["content-length"]) == len(r.content)


@pytest.mark.parametrize("fixture", ARRAYS, ids=[f.id for f in ARRAYS])
def test_whole_fetch_via_client(client, server, fixture):
    local = open_local(server, fixture)
    expected = local[()] if local.ndim == 0 else local[:]
    assert_same_array(client.fetch(fixture.logical), expected, fixture)
    got = client.get_slice(fixture.logical)
    assert got.schunk.vlmeta.getall() == local.schunk.vlmeta.getall()


# --- SChunks: slices in items of the source typesize


SCHUNK_KEYS = [("int", 1), ("head", slice(0, 10)), ("middle", slice(3, 250)), ("tail", slice(-7, None)),
               ("all", slice(None)), ("empty", slice(5, 5)), ("across-chunks", slice(95, 705))]


@pytest.mark.parametrize("fixture, key", [pytest.param(f, k, id=f"{f.id}[{kid}]")
                                          for f in SCHUNKS for kid, k in SCHUNK_KEYS])
def test_schunk_slice(client, server, fixture, key):
    local = open_local(server, fixture)
    nitems = local.nbytes // local.typesize
    if isinstance(key, int):
        start, stop = key, key + 1
    else:
        start, stop, _ = key.indices(nitems)
    expected = local[start:stop]
    assert client.fetch(fixture.logical, key) == expected
    sc = client.get_slice(fixture.logical, key)
    assert isinstance(sc, blosc2.SChunk)
    assert sc.typesize == local.typesize
    assert sc[:] == expected


def test_schunk_item_via_array_object(client, server):
    fixture = make_fixtures.by_id()["public/schunks/hello.b2frame"]
    assert client.get(fixture.logical)[1] == b"e"


# --- `indices` raw (what the client sends for fancy keys)


@pytest.mark.parametrize("indices, key", [
    ("[[1,5,9]]", ([1, 5, 9],)),
    ("[[0,3],\"1:4\"]", ([0, 3], slice(1, 4))),
    ("[null,[0,2]]", (slice(None), [0, 2])),
    ("[2,[0,1,2]]", (2, [0, 1, 2])),
    ("[[-1,0],null]", ([-1, 0], slice(None))),
])
def test_indices_raw(http, server, indices, key):
    fixture = make_fixtures.by_id()["public/dims/2d.b2nd"]
    r = http.get(f"/api/fetch/{fixture.logical}", params={"indices": indices})
    assert r.status_code == 200, r.text
    got = blosc2.ndarray_from_cframe(r.content)
    assert_same_array(got[()] if got.ndim == 0 else got[:], open_local(server, fixture)[()][key])


def test_post_fetch_matches_get(http, server):
    fixture = make_fixtures.by_id()["public/dims/3d.b2nd"]
    body = {"slice_": "1:3, 2, 4:9", "indices": None, "filter": None, "field": None}
    r = http.post(f"/api/fetch/{fixture.logical}", json=body)
    assert r.status_code == 200, r.text
    got = blosc2.ndarray_from_cframe(r.content)[:]
    assert_same_array(got, open_local(server, fixture)[1:3, 2, 4:9])


def test_long_fancy_key_goes_by_post(client, server):
    # > 7500 encoded query chars: the client switches to POST /api/fetch
    fixture = make_fixtures.by_id()["public/dims/1d.b2nd"]
    coords = list(range(0, 1000, 1)) * 2
    got = client.get(fixture.logical)[coords]
    assert_same_array(got, open_local(server, fixture)[()][coords])


def test_fetch_result_is_cframe(http):
    r = http.get("/api/fetch/@public/dims/2d.b2nd", params={"slice_": "1:3"})
    assert r.status_code == 200
    assert r.content[2:10] == b"b2frame\x00"
    assert r.headers["content-type"] == "application/octet-stream"


def test_special_chunks_values(client, server):
    for name, value in [("zeros", 0.0), ("full", 7.5), ("full-int16", -3), ("empty", 0)]:
        fixture = make_fixtures.by_id()[f"public/special/{name}.b2nd"]
        got = client.get(fixture.logical)[()]
        assert (got == value).all(), name
    got = client.get("@public/special/full-nan.b2nd")[:]
    assert np.isnan(got).all()
