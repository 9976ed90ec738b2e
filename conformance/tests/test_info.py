"""GET /api/info for every fixture, compared with what python-blosc2 reads from the same file."""

import ast
import os

import numpy as np
import pytest

import caterva2 as cat2
from helpers import (ARRAYS, CPARAMS_KEYS, FILES, SCHUNK_KEYS, SCHUNKS, ids, local_vlmeta, open_local,
                     parse_mtime)


def _parse_dtype(text):
    try:
        return np.dtype(text)
    except (TypeError, ValueError):
        return np.dtype(ast.literal_eval(text))  # structured: the list repr, as the client does


def _check_cparams(cparams, local_cparams):
    assert set(cparams) == CPARAMS_KEYS  # protocol.md S20: C2Array does CParams(**cparams)
    assert cparams["codec"] == local_cparams.codec.value
    assert cparams["codec_meta"] == local_cparams.codec_meta
    assert cparams["clevel"] == local_cparams.clevel
    assert cparams["filters"] == [f.value for f in local_cparams.filters]
    assert cparams["filters_meta"] == list(local_cparams.filters_meta)
    assert cparams["typesize"] == local_cparams.typesize
    assert cparams["blocksize"] == local_cparams.blocksize
    assert cparams["use_dict"] is bool(local_cparams.use_dict)
    for key in ("nthreads", "splitmode", "tuner"):
        assert isinstance(cparams[key], int)
    pairs = [[f, m] for f, m in zip(cparams["filters"], cparams["filters_meta"]) if f != 0]
    assert cparams["filters, meta"] == pairs


def _check_schunk_part(meta, schunk, server, fixture):
    assert meta["cbytes"] == schunk.cbytes
    assert meta["nbytes"] == schunk.nbytes
    assert meta["chunkshape"] == schunk.chunkshape
    assert meta["chunksize"] == schunk.chunksize
    assert meta["nchunks"] == schunk.nchunks
    assert meta["contiguous"] is True
    if schunk.cbytes:
        assert meta["cratio"] == pytest.approx(schunk.nbytes / schunk.cbytes)
    assert meta["urlpath"] is None or isinstance(meta["urlpath"], str)
    assert meta["vlmeta"] == local_vlmeta(schunk)
    _check_cparams(meta["cparams"], schunk.cparams)


def _check_mtime(value, server, fixture):
    st = os.stat(server.local(fixture))
    assert parse_mtime(value) == pytest.approx(st.st_mtime, abs=1e-3)


@pytest.mark.parametrize("fixture", ARRAYS, ids=ids(ARRAYS))
def test_info_ndarray(client, server, fixture):
    info = client.get_info(fixture.logical)
    local = open_local(server, fixture)
    assert {"shape", "chunks", "blocks", "dtype", "schunk", "mtime"} <= set(info)
    assert info["shape"] == list(local.shape)
    assert info["chunks"] == list(local.chunks)
    assert info["blocks"] == list(local.blocks)
    assert info["dtype"] == str(local.dtype)  # protocol.md S19
    assert info.get("accept_ranges") == "bytes"
    _check_mtime(info["mtime"], server, fixture)
    assert set(info["schunk"]) == SCHUNK_KEYS
    assert info["schunk"]["mtime"] is None  # protocol.md S18
    _check_schunk_part(info["schunk"], local.schunk, server, fixture)


@pytest.mark.parametrize("fixture", SCHUNKS, ids=ids(SCHUNKS))
def test_info_schunk(client, server, fixture):
    info = client.get_info(fixture.logical)
    local = open_local(server, fixture)
    assert set(info) == SCHUNK_KEYS  # the SChunk model at top level, no shape
    _check_mtime(info["mtime"], server, fixture)
    _check_schunk_part(info, local, server, fixture)


@pytest.mark.parametrize("fixture", FILES, ids=ids(FILES))
def test_info_regular_file(client, server, fixture):
    info = client.get_info(fixture.logical)
    local = open_local(server, fixture)
    assert set(info) == SCHUNK_KEYS
    assert info["nbytes"] == len(fixture.content)
    assert info["cparams"]["typesize"] == 1
    _check_mtime(info["mtime"], server, fixture)
    _check_schunk_part(info, local, server, fixture)


@pytest.mark.parametrize("fixture", ARRAYS, ids=ids(ARRAYS))
def test_client_array_object(client, server, fixture):
    arr = client.get(fixture.logical)
    local = open_local(server, fixture)
    assert isinstance(arr, cat2.Array)
    assert arr.shape == local.shape
    assert _parse_dtype(arr.dtype) == local.dtype  # the client hands back the JSON string
    assert arr.chunks == local.chunks
    assert arr.blocks == local.blocks
    assert arr.vlmeta == local_vlmeta(local)


@pytest.mark.parametrize("fixture", SCHUNKS, ids=ids(SCHUNKS))
def test_client_schunk_object(client, server, fixture):
    obj = client.get(fixture.logical)
    assert isinstance(obj, cat2.Array)
    assert obj.meta["nbytes"] == open_local(server, fixture).nbytes
    assert obj.vlmeta == local_vlmeta(open_local(server, fixture))


@pytest.mark.parametrize("fixture", FILES, ids=ids(FILES))
def test_client_file_object(client, fixture):
    obj = client.get(fixture.logical)
    assert type(obj) is cat2.File
    assert obj.meta["nbytes"] == len(fixture.content)
    assert obj.vlmeta == {}


def test_info_vlmeta_types(client):
    info = client.get_info("@public/attrs/vlmeta.b2nd")
    assert info["schunk"]["vlmeta"] == {
        "int": 7, "neg": -123456789012, "float": 2.5, "str": "héllo wörld", "bytes": "raw-bytes", "true": True,
        "false": False, "none": None, "list": [1, 2, "three", 4.0], "dict": {"k": "v", "n": [1, {"deep": True}]},
        "empty": "",
    }


def test_info_scalar_attrs(client):
    info = client.get_info("@public/scalars/0d-str.b2nd")
    assert info["shape"] == info["chunks"] == info["blocks"] == []
    assert info["dtype"] == "<U6"
    assert info["schunk"]["vlmeta"] == {"a": 1, "b": "foo", "c": 123.456}


@pytest.mark.parametrize("directory", ["dims", "deep", "deep/a/b/c", "dir with space", "logs"])
def test_info_directory(client, server, directory):
    info = client.get_info(f"@public/{directory}")
    base = server.statedir / "public" / directory
    files = [p for p in base.rglob("*") if p.is_file()]
    assert info["kind"] == "group"
    assert info["nfiles"] == len(files)
    assert info["size"] == sum(p.stat().st_size for p in files)
    parse_mtime(info["mtime"])


def test_info_root(client, server):
    info = client.get_info("@public")
    files = [p for p in (server.statedir / "public").rglob("*") if p.is_file()]
    assert info["kind"] == "group"
    assert info["nfiles"] == len(files)
    assert info["size"] == sum(p.stat().st_size for p in files)


def test_client_group_object(client):
    group = client.get("@public/deep")
    assert isinstance(group, cat2.Group)
    assert group.file_list == ["a/b/c/leaf.b2nd"]


def test_info_headers(http):
    r = http.get("/api/info/@public/dims/1d.b2nd")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
