"""Non-element-wise lazy expressions through the official client (README "Lazy expressions"):
reductions, constructors, indexing, joins, matrix products, casts, and datasets of HDF5 files
read in place as operands.

Operands are stored with several chunks (so reductions and slices cross chunk borders);
expressions are saved with ``client.upload(blosc2.lazyexpr(text, operands), path)`` or as
the raw JSON the client sends, and read back through /api/fetch (random slices), /api/chunk,
/api/download and ``compute=True``.  Expected values are NumPy's on local copies, with a
relative tolerance for floats (summation order differs from NumPy's pairwise sums).
The random part composes operations (fixed seed) and compares random slices of the result.
"""

import random
import re

import blosc2
import h5py
import httpx
import numpy as np
import pytest

from loginmode import cat2rs_only
from test_lazy import ADMIN, _start, base_body, expect_error, post_lazy, save, upload_array

SEED = 20261202


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = _start(tmp_path_factory.mktemp("compute"))
    try:
        s.add_user(*ADMIN, superuser=True)
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def admin(srv):
    return srv.client(ADMIN, timeout=120)


@pytest.fixture(scope="module")
def raw(srv, admin):
    return srv.http(admin.cookie, timeout=120)


@pytest.fixture(scope="module")
def data(admin, tmp_path_factory):
    """Local arrays and their remote copies (several chunks each)."""
    tmp = tmp_path_factory.mktemp("compute-data")
    rng = np.random.default_rng(SEED)
    local = {
        "u": (rng.integers(0, 60000, (40, 30, 20)).astype(np.uint16), (16, 12, 8), (8, 6, 4)),
        "i": (rng.integers(-1000, 1000, (50, 24)).astype(np.int32), (16, 10), (8, 5)),
        "f": (rng.normal(size=(50, 24)) * 100, (16, 10), (8, 5)),
        "g": (rng.normal(size=(24, 7)).astype(np.float32), (10, 7), (5, 7)),
        "b": (rng.random((50, 24)) < 0.3, (16, 10), (8, 5)),
        "v": (rng.normal(size=1000), (128,), (32,)),
    }
    remote = {}
    for name, (arr, chunks, blocks) in local.items():
        remote[name] = upload_array(admin, tmp, arr, f"@shared/compute/{name}.b2nd", chunks, blocks)
    return {k: v[0] for k, v in local.items()}, remote


def close(got, expected):
    """None when *got* is NumPy's *expected* (dtype, shape, values), else why not."""
    got = np.asarray(got)
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return f"{got.dtype}{got.shape} != numpy {expected.dtype}{expected.shape}"
    if expected.dtype.kind in "fc":
        tol = 64 * np.finfo(expected.dtype).eps
        if not np.allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max(initial=1), equal_nan=True):
            return f"values differ: {got.ravel()[:5]} vs {expected.ravel()[:5]}"
    elif not np.array_equal(got, expected):
        bad = np.argwhere(got != expected)[:3].tolist()
        return f"values differ at {bad}"
    return None


def save_any(admin, raw, text, names, path, **kw):
    """Save through the official client; where python-blosc2 will not build the expression on
    the client side (it refuses `...`, mixed-dtype `concat`, `transpose` with axes, ...), post
    the JSON the client sends for it."""
    remote = {n: admin.get(f"@shared/compute/{n}.b2nd") for n in names}
    try:
        lazy = blosc2.lazyexpr(text, operands=remote)
    except (ValueError, TypeError, KeyError, SyntaxError, AttributeError, NotImplementedError):
        body = base_body(expression=text, operands={n: f"@shared/compute/{n}.b2nd" for n in names},
                         dtype=None, shape=None, **kw)
        r = post_lazy(raw, path, body)
        if r.status_code != 200:
            raise httpx.HTTPStatusError(r.text, request=r.request, response=r)
        return admin.get(path)
    return admin.upload(lazy, path, **kw)


def random_key(rng, shape, steps=False):
    """A random basic-indexing key for *shape*: ints and slices (with steps if *steps*: the
    client fetches only step-1 slices, the expression language takes any)."""
    key = []
    for n in shape:
        roll = rng.random()
        if roll < 0.2 and n > 0:
            key.append(int(rng.integers(0, n)))
        elif roll < 0.5:
            key.append(slice(None))
        else:
            a, b = sorted(rng.integers(0, n + 1, 2).tolist())
            key.append(slice(a, b + 1, int(rng.choice([1, 1, 2, 3, -1])) if steps else None))
    return tuple(key)


def check_slices(remote, expected, rng, n=4):
    why = close(remote[()] if expected.ndim == 0 else remote[:], expected)
    assert why is None, ("whole", why)
    for _ in range(n if expected.ndim else 0):
        key = random_key(rng, expected.shape)
        why = close(remote[key], expected[key])
        assert why is None, (key, why)


# --------------------------------------------------------------------------------------
# reductions


REDUCTIONS = [
    ("sum(u, axis=0)", lambda d: np.sum(d["u"], axis=0)),
    ("sum(u, axis=(0, 2)) + 1", lambda d: np.sum(d["u"], axis=(0, 2)) + 1),
    ("sum(u)", lambda d: np.sum(d["u"])),
    ("prod(b + 1, axis=1)", lambda d: np.prod(d["b"] + 1, axis=1)),
    ("mean(f, axis=1)", lambda d: np.mean(d["f"], axis=1)),
    ("mean(u, axis=2, keepdims=True) - u", lambda d: np.mean(d["u"], axis=2, keepdims=True) - d["u"]),
    ("std(f, axis=0)", lambda d: np.std(d["f"], axis=0)),
    ("var(i, axis=0)", lambda d: np.var(d["i"], axis=0)),
    ("max(u, axis=1) - min(u, axis=1)", lambda d: np.max(d["u"], axis=1) - np.min(d["u"], axis=1)),
    ("min(f)", lambda d: np.min(d["f"])),
    ("any(u > 59990, axis=1)", lambda d: np.any(d["u"] > 59990, axis=1)),
    ("all(i > -990, axis=0)", lambda d: np.all(d["i"] > -990, axis=0)),
    ("argmax(f, axis=0)", lambda d: np.argmax(d["f"], axis=0)),
    ("argmin(v)", lambda d: np.argmin(d["v"])),
    ("count_nonzero(b, axis=1)", lambda d: np.count_nonzero(d["b"], axis=1)),
    ("cumulative_sum(i, axis=0)", lambda d: np.cumulative_sum(d["i"], axis=0)),
    ("cumulative_prod(b + 1, axis=1)", lambda d: np.cumulative_prod(d["b"] + 1, axis=1)),
    ("sum(f * 2 + i, axis=1)", lambda d: np.sum(d["f"] * 2 + d["i"], axis=1)),
]


@pytest.mark.parametrize("text,fn", REDUCTIONS, ids=[t for t, _ in REDUCTIONS])
def test_reductions(admin, data, text, fn):
    """Reductions with axis over chunked operands: info type, whole result and random slices."""
    local, remote = data
    names = sorted(set(re.findall(r"\b([uifbgv])\b", text)))
    path = "@personal/red/" + "".join(ch for ch in text if ch.isalnum())[:60] + ".b2nd"
    e = save(admin, text, {n: remote[n] for n in names}, path)
    expected = np.asarray(fn(local))
    info = admin.get_info(path)
    assert info["dtype"] == str(expected.dtype) and tuple(info["shape"]) == expected.shape, info
    assert "expression" in info, info
    check_slices(e, expected, np.random.default_rng(len(text)))


def test_reduction_chunk_download_and_compute(admin, data, tmp_path):
    """`sum(u, axis=0)`: its chunks, its download and its computed copy all hold the reduction."""
    local, remote = data
    expected = np.sum(local["u"], axis=0)
    path = "@personal/red/chunked.b2nd"
    save(admin, "sum(u, axis=0)", {"u": remote["u"]}, path)
    # a lazy dataset's info has no chunks: chunk 0 is checked to hold result items
    first = np.frombuffer(blosc2.decompress2(admin.get_chunk(path, 0)), dtype=expected.dtype)
    assert first.size > 0 and np.isin(first[: min(first.size, expected.shape[-1])], expected).all()
    local_copy = admin.download(path, tmp_path / "dl")
    np.testing.assert_array_equal(blosc2.open(str(local_copy))[:], expected)
    computed = save(admin, "sum(u, axis=0)", {"u": remote["u"]}, "@personal/red/computed.b2nd", compute=True)
    assert "expression" not in admin.get_info("@personal/red/computed.b2nd")
    np.testing.assert_array_equal(computed[:], expected)


# --------------------------------------------------------------------------------------
# constructors and casts


CONSTRUCTED = [
    ("linspace(0, 10, num=50)", {}, lambda d: np.linspace(0, 10, num=50)),
    ("arange(0, 100, 2) * 2", {}, lambda d: np.arange(0, 100, 2) * 2),
    ("linspace(0, 1, 1000) + v", {"v"}, lambda d: np.linspace(0, 1, 1000) + d["v"]),
    ("zeros((50, 24), dtype='float32') + i", {"i"}, lambda d: np.zeros((50, 24), np.float32) + d["i"]),
    ("full((24,), 3) * i", {"i"}, lambda d: np.full((24,), 3) * d["i"]),
    ("ones((50, 24)) - b", {"b"}, lambda d: np.ones((50, 24)) - d["b"]),
    ("float32(i) / 3", {"i"}, lambda d: d["i"].astype(np.float32) / 3),
    ("int16(f)", {"f"}, lambda d: d["f"].astype(np.int16)),
    ("uint8(u) + 1", {"u"}, lambda d: d["u"].astype(np.uint8) + 1),
]


@pytest.mark.parametrize("text,names,fn", CONSTRUCTED, ids=[t for t, _, _ in CONSTRUCTED])
def test_constructors_and_casts(admin, data, text, names, fn):
    local, remote = data
    path = "@personal/ctor/" + "".join(ch for ch in text if ch.isalnum())[:60] + ".b2nd"
    e = save(admin, text, {n: remote[n] for n in names}, path)
    check_slices(e, np.asarray(fn(local)), np.random.default_rng(len(text)))


def test_linspace_is_python_blosc2s(admin):
    """The client's own `blosc2.linspace` gives the same items as the server's."""
    e = admin.upload(blosc2.lazyexpr("linspace(-1, 2, 1000, shape=(10, 10, 10))"), "@personal/ctor/lin3.b2nd")
    np.testing.assert_array_equal(e[:], blosc2.linspace(-1, 2, 1000, shape=(10, 10, 10))[:])


# --------------------------------------------------------------------------------------
# indexing and linear algebra


SLICES = [
    ("u[2:30:3, ::-1, 5] + 1", {"u"}, lambda d: d["u"][2:30:3, ::-1, 5] + 1),
    ("f[10] * i[-1]", {"f", "i"}, lambda d: d["f"][10] * d["i"][-1]),
    ("sum(u[:, 1:3], axis=1)", {"u"}, lambda d: np.sum(d["u"][:, 1:3], axis=1)),
    ("f.T + 1", {"f"}, lambda d: d["f"].T + 1),
    ("u[..., None, 3]", {"u"}, lambda d: d["u"][..., None, 3]),
]


@pytest.mark.parametrize("text,names,fn", SLICES, ids=[t for t, _, _ in SLICES])
def test_indexing(admin, raw, data, text, names, fn):
    local, remote = data
    path = "@personal/idx/" + "".join(ch for ch in text if ch.isalnum())[:60] + ".b2nd"
    e = save_any(admin, raw, text, names, path)
    check_slices(e, np.asarray(fn(local)), np.random.default_rng(len(text)))


def test_client_slice_method_past_the_end(admin, data, raw):
    """python-blosc2 writes `o0.slice((slice(None, 60, None),))` and declares 60 rows even where
    the operand has 50; NumPy's clipped shape is kept."""
    local, remote = data
    body = base_body(expression="(o0.slice((slice(None, 60, None),)))", operands={"o0": "@shared/compute/f.b2nd"},
                     dtype="float64", shape=[60, 24])
    r = post_lazy(raw, "@personal/idx/past.b2nd", body)
    assert r.status_code == 200, r.text
    info = admin.get_info("@personal/idx/past.b2nd")
    assert info["shape"] == [50, 24], info
    np.testing.assert_array_equal(admin.fetch("@personal/idx/past.b2nd"), local["f"][:60])
    # and the client's own form
    e = admin.upload(blosc2.lazyexpr("a[3:7] * 2", operands={"a": remote["i"]}), "@personal/idx/client.b2nd")
    np.testing.assert_array_equal(e[:], local["i"][3:7] * 2)


LINALG = [
    ("concat([i, f], axis=0)", {"i", "f"}, lambda d: np.concat([d["i"], d["f"]], axis=0)),
    ("concat([f, i, f], axis=1) * 2", {"i", "f"}, lambda d: np.concat([d["f"], d["i"], d["f"]], axis=1) * 2),
    ("stack([i, i + 1, b], axis=1)", {"i", "b"}, lambda d: np.stack([d["i"], d["i"] + 1, d["b"]], axis=1)),
    ("matmul(f, g)", {"f", "g"}, lambda d: np.matmul(d["f"], d["g"])),
    ("f @ g + 1", {"f", "g"}, lambda d: d["f"] @ d["g"] + 1),
    ("transpose(u, (2, 0, 1))", {"u"}, lambda d: np.transpose(d["u"], (2, 0, 1))),
]


@pytest.mark.parametrize("text,names,fn", LINALG, ids=[t for t, _, _ in LINALG])
def test_linear_algebra_is_stored_computed(admin, raw, data, text, names, fn):
    """Like the reference, expressions with linear algebra are stored computed (no `expression`)."""
    local, remote = data
    path = "@personal/la/" + "".join(ch for ch in text if ch.isalnum())[:60] + ".b2nd"
    e = save_any(admin, raw, text, names, path)
    assert "expression" not in admin.get_info(path)
    check_slices(e, np.asarray(fn(local)), np.random.default_rng(len(text)))


# --------------------------------------------------------------------------------------
# datasets of HDF5 files, in place


@cat2rs_only  # the reference cannot use in-place HDF5 datasets as operands
def test_hdf5_dataset_in_place_as_operand(admin, tmp_path):
    """`@shared/x.h5/entry/data` (not unfolded) is an operand like any array, also after a reload."""
    rng = np.random.default_rng(SEED + 1)
    stack = rng.poisson(3, (12, 40, 30)).astype(np.uint16)
    local = tmp_path / "inplace.h5"
    with h5py.File(local, "w") as f:
        f.create_dataset("entry/data", data=stack, chunks=(1, 40, 30), compression="gzip", shuffle=True)
    admin.upload(local, "@shared/inplace/x.h5")
    leaf = admin.get("@shared/inplace/x.h5/entry/data")
    e = save(admin, "where(d < 2, d * 1000, d) + sum(d, axis=0)", {"d": leaf}, "@personal/inplace/e.b2nd")
    expected = np.where(stack < 2, stack * 1000, stack) + np.sum(stack, axis=0)
    info = admin.get_info("@personal/inplace/e.b2nd")
    assert list(info["operands"].values()) == ["@shared/inplace/x.h5/entry/data"], info
    check_slices(e, expected, np.random.default_rng(7))


# --------------------------------------------------------------------------------------
# errors


ERRORS = [
    ("sum(f, axis=2)", "axis 2 is out of bounds"),
    ("concat([f, u], axis=0)", ""),
    ("matmul(f, f)", ""),
    ("linspace(0, 1, -1)", ""),
    ("max(f[0:0], axis=0)", "zero-size"),
    ("f[60]", "out of bounds"),
    ("f[1, 2, 3]", ""),
    ("nosuchfunc(f)", "not defined"),
    ("f.tolist()", "Invalid method name"),
    ("sum(f, axis=0, foo=1)", "unexpected keyword"),
    ("zeros((3,), dtype='nosuchtype')", "not understood"),
]


@pytest.mark.parametrize("text,words", ERRORS, ids=[t for t, _ in ERRORS])
def test_errors_are_400(raw, data, text, words):
    body = base_body(expression=text, operands={"f": "@shared/compute/f.b2nd", "u": "@shared/compute/u.b2nd"})
    r = post_lazy(raw, "@personal/errs/e.b2nd", body)
    assert r.status_code == 400, (text, r.status_code, r.text)
    detail = r.json()["detail"]
    assert detail.startswith("Invalid name or expression: ") and words in detail, detail


# --------------------------------------------------------------------------------------
# random compositions


def random_expression(r, local):
    """A random composition of structural and element-wise operations, and NumPy's value."""
    name = r.choice(["u", "i", "f", "b"])
    text, value = name, local[name]
    for _ in range(r.randint(1, 3)):
        nd = value.ndim
        if nd == 0:
            break
        choice = r.random()
        if choice < 0.3:
            axis = r.choice([None] + list(range(-nd, nd)))
            func = r.choice(["sum", "mean", "max", "min", "any", "argmax", "std"])
            if func == "argmax" and value.dtype == bool:
                func = "sum"
            keep = r.random() < 0.3 and func != "argmax"
            kw = f", keepdims=True" if keep else ""
            text = f"{func}({text}, axis={axis}{kw})"
            value = getattr(np, func)(value, axis=axis, **({"keepdims": True} if keep else {}))
        elif choice < 0.55:
            key = random_key(np.random.default_rng(r.randint(0, 10**6)), value.shape, steps=True)
            parts = [str(k) if isinstance(k, int) else f"{k.start if k.start is not None else ''}:"
                     f"{k.stop if k.stop is not None else ''}:{k.step if k.step is not None else ''}" for k in key]
            text = f"({text})[{', '.join(parts)}]"
            value = value[key]
        elif choice < 0.7:
            text = f"({text}).T"
            value = value.T
        elif choice < 0.8 and nd >= 1:
            ax = r.randrange(nd)
            text = f"cumulative_sum({text}, axis={ax})"
            value = np.cumulative_sum(value, axis=ax)
        else:
            lit = r.choice([1, 2, 3])
            text = f"({text}) * {lit} + 1"
            value = value * lit + 1
    return text, np.asarray(value)


def test_random_compositions(admin, raw, data):
    """Sent as the JSON the client sends (python-blosc2 would not build all of them)."""
    local, _ = data
    r = random.Random(SEED)
    checked = 0
    for n in range(40):
        text, expected = random_expression(r, local)
        if expected.size == 0:
            continue
        names = sorted(set(re.findall(r"\b([uifb])\b", text)))
        path = f"@personal/rand/{n}.b2nd"
        body = base_body(expression=text, operands={k: f"@shared/compute/{k}.b2nd" for k in names},
                         dtype=str(expected.dtype), shape=list(expected.shape))
        r_ = post_lazy(raw, path, body)
        assert r_.status_code == 200, (text, r_.text)
        check_slices(admin.get(path), expected, np.random.default_rng(n), n=2)
        checked += 1
    assert checked > 30


@cat2rs_only  # the reference sends no Server-Timing
def test_computed_answers_say_how_long_the_server_worked(admin, raw, data):
    """Fetches and downloads of lazy datasets, and saving one, carry `Server-Timing`
    (`compute;dur=<ms>` / `save;dur=<ms>`): the server's work apart from the transfer."""
    local, remote = data
    expected = local["i"] * 2 + local["f"]
    path = "@personal/timing/x.b2nd"
    body = base_body(expression="i * 2 + f", operands={"i": "@shared/compute/i.b2nd", "f": "@shared/compute/f.b2nd"},
                     dtype=str(expected.dtype), shape=list(expected.shape))
    r = post_lazy(raw, path, body)
    assert r.status_code == 200, r.text
    assert re.fullmatch(r"save;dur=\d+\.\d{3}", r.headers["server-timing"]), r.headers["server-timing"]
    for endpoint in ("fetch", "download"):
        r = raw.get(f"/api/{endpoint}/{path}")
        assert r.status_code == 200, r.text
        timing = re.fullmatch(r"compute;dur=(\d+\.\d{3})", r.headers["server-timing"])
        assert timing and float(timing[1]) >= 0, r.headers["server-timing"]
        assert close(blosc2.ndarray_from_cframe(r.content)[()], expected) is None
