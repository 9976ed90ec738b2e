"""Shared helpers for the integration tests: fixture selections, keys, comparisons."""

import datetime
import re

import blosc2
import numpy as np

import make_fixtures

FIXTURES = make_fixtures.FIXTURES
PUBLIC = [f for f in FIXTURES if f.root == "public"]
ARRAYS = [f for f in PUBLIC if f.kind == "ndarray"]
SCHUNKS = [f for f in PUBLIC if f.kind == "schunk"]
FILES = [f for f in PUBLIC if f.kind == "file"]
DATASETS = ARRAYS + SCHUNKS
STRUCTS = [f for f in ARRAYS if f.fields]

# Arrays whose content is undefined (blosc2.uninit): only shape/dtype can be compared.
UNDEFINED_VALUES = {"public/special/uninit.b2nd"}

MTIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")

CPARAMS_KEYS = {"codec", "codec_meta", "clevel", "filters", "filters_meta", "typesize", "blocksize", "nthreads",
                "splitmode", "tuner", "use_dict", "filters, meta"}
SCHUNK_KEYS = {"cbytes", "chunkshape", "chunksize", "contiguous", "cparams", "cratio", "nbytes", "urlpath", "vlmeta",
               "nchunks", "mtime"}


def ids(fixtures):
    return [f.id for f in fixtures]


def open_local(server, fixture):
    return blosc2.open(str(server.local(fixture)), mode="r")


def parse_mtime(s):
    assert MTIME_RE.match(s), f"mtime {s!r} is not ISO-8601 UTC with a Z"
    return datetime.datetime.fromisoformat(s[:-1]).replace(tzinfo=datetime.timezone.utc).timestamp()


def jsonable(v):
    """What a vlmeta value looks like once it went through the server's JSON (bytes -> str)."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {(k.decode() if isinstance(k, bytes) else k): jsonable(x) for k, x in v.items()}
    return v


def local_vlmeta(obj):
    schunk = getattr(obj, "schunk", obj)
    return {k: jsonable(v) for k, v in schunk.vlmeta.getall().items()}


def assert_same_array(got, expected, fixture=None, check_values=True):
    """*got* (from the server) equals *expected* (read locally): dtype, shape and values."""
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != {expected.dtype}"
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}"
    if not check_values or (fixture is not None and fixture.id in UNDEFINED_VALUES):
        return
    if expected.dtype.fields is not None or expected.dtype.kind in "SUV":
        assert got.tobytes() == expected.tobytes(), "values differ"
    else:
        np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------------------------------
# keys


def basic_keys(fixture, shape, chunks):
    """(id, key) pairs of int/slice/tuple/Ellipsis keys valid for *shape*."""
    nd = len(shape)
    if nd == 0:
        return [("empty-tuple", ()), ("ellipsis", Ellipsis)]
    s0, c0 = shape[0], chunks[0]
    edge_start = (s0 // c0) * c0 if s0 % c0 else s0 - c0
    keys = [
        ("int0", 0),
        ("int-last", -1),
        ("int-mid", s0 // 2),
        ("slice-all", slice(None)),
        ("slice-head", slice(None, min(3, s0))),
        ("slice-inner", slice(1, s0 - 1)),
        ("slice-neg", slice(-2, None)),
        ("slice-neg-stop", slice(0, -1)),
        ("slice-0:0", slice(0, 0)),
        ("slice-2:0", slice(2, 0)),
        ("slice-past-end", slice(s0 - 1, s0 + 100)),
        ("slice-edge-chunk", slice(max(edge_start - 1, 0), s0)),
        ("slice-across-chunks", slice(max(c0 - 1, 0), min(2 * c0 + 1, s0))),
        ("ellipsis", Ellipsis),
        ("tuple-all", (slice(None),) * nd),
        ("tuple-explicit-all", tuple(slice(0, d) for d in shape)),
        ("tuple-1-slice", (slice(1, 2),)),
    ]
    if fixture.group == "codec":
        keep = {"int-mid", "slice-all", "slice-edge-chunk", "slice-across-chunks", "tuple-all"}
        return [k for k in keys if k[0] in keep]
    if nd >= 2:
        keys += [
            ("tuple-ints", (0, -1)),
            ("partial-tuple", (slice(1, 3),)),
            ("ellipsis-int", (Ellipsis, 0)),
            ("int-ellipsis", (1, Ellipsis)),
            ("slice-ellipsis-slice", (slice(0, 2), Ellipsis, slice(1, None))),
            ("mixed", tuple(slice(1, d) if i % 2 == 0 else d // 2 for i, d in enumerate(shape))),
            ("all-ints", tuple(-1 if i % 2 else d // 2 for i, d in enumerate(shape))),
            ("tuple-empty", (slice(0, 0), Ellipsis)),
            ("tuple-empty-last", (Ellipsis, slice(3, 1))),
            ("edge-box", tuple(slice(max((d // c) * c - 1, 0) if d % c else max(d - c - 1, 0), d)
                               for d, c in zip(shape, chunks))),
        ]
    return keys


def fancy_keys(shape):
    """(id, key) pairs that the client sends as `indices`."""
    nd = len(shape)
    if nd == 0:
        return []
    s0 = shape[0]
    keys = [
        ("list", [1, s0 - 1, s0 // 2]),
        ("list-sorted", [0, 1, s0 - 1]),
        ("list-neg", [-1, 0]),
        ("list-dup", [1, 1, 0]),
        ("list-one", [s0 // 2]),
        ("mask", np.arange(s0) % 3 == 0),
        ("ndarray", np.array([s0 - 1, 0])),
    ]
    if nd >= 2:
        s1 = shape[1]
        keys += [
            ("list-slice", ([0, s0 - 1], slice(0, min(3, s1)))),
            ("slice-list", (slice(0, min(2, s0)), [s1 - 1, 0])),
            ("int-list", (s0 // 2, [0, s1 - 1])),
        ]
    return keys


STEP_KEYS_1D = ["::2", "1::3", "::7", "2:9:2", "-5::2"]
STEP_KEYS_ND = ["::2", "::2, 1::3", ":, ::2", "1:, 0:5:2"]


def step_keys(shape):
    nd = len(shape)
    if nd == 0:
        return []
    return STEP_KEYS_1D if nd == 1 else STEP_KEYS_ND


def np_key(text):
    """The NumPy key that a `slice_` string spells."""
    return eval(f"np.index_exp[{text}]", {"np": np, "__builtins__": {}}, {})
