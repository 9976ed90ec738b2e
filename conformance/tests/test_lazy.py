"""Lazy expressions through the official client (protocol.md §7, README "Lazy expressions").

One login-mode server for the module (`loginmode.start_server`), a superuser
(`ADMIN`), two ordinary users (`ALICE`, `BOB`) and an anonymous client.
Expressions are saved with
``client.upload(blosc2.lazyexpr(text, operands={...remote Arrays...}), path)``
(POST /api/upload_lazyarr) and read back through /api/info, /api/fetch,
/api/chunk and /api/download.  Expected values are NumPy's (2.x, NEP 50),
computed on local copies of the operands:

* differential: random element-wise expressions (a grammar over 1-3 operands of
  eleven dtypes, broadcasting shapes, Python literals, operators, functions,
  `clip` and `where`; fixed seed): the info dtype must be NumPy's result dtype,
  and a random selection (`slice_` or `indices`) of the result NumPy's result
  on the same selection (exact for integers and booleans, NaN positions equal
  and ``rtol=1e-6`` for floats).  Values that change in NumPy itself when the
  transcendental functions are off by 2 ulps (a remainder of a `tanh`...) are
  not compared: there the last bit of the math library decides.  Expressions
  python-blosc2 will not build on the client side are sent as the JSON the
  client would send;
* the client's declared dtype differing from NumPy's, Python literals out of
  an operand's range, and NumPy's own refusals (400, not a result);
* chains: expressions over saved expressions, over an unfolded HDF5 proxy
  (``where(p < 10, p * 32000, p)`` written in the expression string), operands
  changed or removed after the expression was saved, overwrites, cycles;
* `/api/chunk` of an expression, in the geometry of its operand; steps and
  coordinate lists;
* ``compute=True`` (a stored array) and `/api/download` of an expression;
* python-blosc2 opening a carrier cat2rs wrote, straight from the state dir;
* interop: carriers the reference server wrote, served by cat2rs, and the reverse;
* errors (4xx with their message, never a 5xx) and permissions (an expression
  over data the caller may not read gives no data: anonymous callers, another
  user's @personal files).

`CAT2RS_BIN=reference` runs the module against the reference server to check the
tests: NumPy-semantics tests are `cat2rs_only` there, and the reference's known
faults are `reference_bug`s.
"""

import ast
import collections
import itertools
import math
import pathlib
import re
import time
import warnings

import blosc2
import h5py
import httpx
import numpy as np
import pytest

import cat2rs_launch
from loginmode import cat2rs_only, detail_of, start_reference, start_server, status_of

ADMIN = ("lazyadmin@example.com", "lazyadminpass")
ALICE = ("lazyalice@example.com", "lazyalicepass")
BOB = ("lazybob@example.com", "lazybobpass1")
SEED = 20260902

# how many random expressions of the differential test are checked (the ones NumPy rejects are not counted)
N_EXPRESSIONS = 300

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"]

# operand shapes, by group; every shape of a group broadcasts to the group's first one.
# value: (chunks, blocks) of the stored operand (several chunks, blocks dividing chunks)
SHAPE_GROUPS = {
    "2d": {
        (20, 30): ((8, 12), (4, 6)),
        (30,): ((12,), (6,)),
        (20, 1): ((8, 1), (4, 1)),
    },
    "1d": {
        (1000,): ((128,), (32,)),
    },
    "3d": {
        (6, 7, 8): ((4, 4, 4), (2, 2, 2)),
        (7, 8): ((4, 4), (2, 2)),
        (6, 1, 8): ((4, 1, 4), (2, 1, 2)),
    },
}
GROUP_WEIGHTS = {"2d": 0.5, "1d": 0.2, "3d": 0.3}


# --------------------------------------------------------------------------------------
# server, users, clients


def _start(workdir, **kw):
    """`start_server`, retried while the binary is being rebuilt by someone else."""
    deadline = time.monotonic() + 180
    while True:
        try:
            if cat2rs_launch.check_available(kw.get("spec")) is not None and time.monotonic() < deadline:
                time.sleep(2)
                continue
            return start_server(workdir, **kw)
        except (RuntimeError, OSError):  # exited at start-up, or the binary is being written
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = _start(tmp_path_factory.mktemp("lazy"))
    try:
        s.add_user(*ADMIN, superuser=True)
        s.add_user(*ALICE, superuser=False)
        s.add_user(*BOB, superuser=False)
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def admin(srv):
    return srv.client(ADMIN, timeout=60)


@pytest.fixture(scope="module")
def alice(srv):
    return srv.client(ALICE, timeout=60)


@pytest.fixture(scope="module")
def bob(srv):
    return srv.client(BOB, timeout=60)


@pytest.fixture(scope="module")
def anon(srv):
    return srv.client(timeout=60, keepalive=False)


@pytest.fixture(scope="module")
def raw(srv, admin):
    """A raw httpx client with the superuser's cookie."""
    return srv.http(admin.cookie, timeout=60)


@pytest.fixture(scope="module")
def raw_anon(srv):
    return srv.http(None, timeout=60, keepalive=False)


def upload_array(client, tmp, arr, path, chunks=None, blocks=None):
    """Store *arr* at *path* with the given geometry (the upload of a local .b2nd keeps it)."""
    local = pathlib.Path(tmp) / (path.replace("/", "_").replace("@", "") or "x.b2nd")
    blosc2.asarray(np.ascontiguousarray(arr), urlpath=str(local), mode="w", chunks=chunks, blocks=blocks)
    try:
        return client.upload(local, path)
    finally:
        local.unlink()


def save(client, text, operands, path, compute=None):
    """Save `blosc2.lazyexpr(text, operands)` at *path*; the remote Array the client answers."""
    return client.upload(blosc2.lazyexpr(text, operands=operands), path, compute=compute)


def expect_error(status, fn, *args, **kw):
    with pytest.raises(httpx.HTTPStatusError) as exc:
        fn(*args, **kw)
    assert status_of(exc) == status, (status_of(exc), detail_of(exc))
    return detail_of(exc)


# --------------------------------------------------------------------------------------
# NumPy's side

NP_FUNCS = {
    "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tan": np.tan, "exp": np.exp, "expm1": np.expm1,
    "log": np.log, "log1p": np.log1p, "log2": np.log2, "log10": np.log10, "abs": np.abs, "floor": np.floor,
    "ceil": np.ceil, "trunc": np.trunc, "square": np.square, "tanh": np.tanh, "sinh": np.sinh,
    "arctan": np.arctan, "arcsin": np.arcsin, "sign": np.sign, "negative": np.negative, "isnan": np.isnan,
    "isfinite": np.isfinite, "isinf": np.isinf, "signbit": np.signbit, "reciprocal": np.reciprocal,
    "arctan2": np.arctan2, "maximum": np.maximum, "minimum": np.minimum, "hypot": np.hypot,
    "copysign": np.copysign, "logaddexp": np.logaddexp, "clip": np.clip, "where": np.where,
}


# functions whose last bit differs between math libraries (sqrt and the arithmetic operators other than
# `**` are correctly rounded everywhere); `**` is rewritten into a call of "power" to be nudged too
INEXACT = {"sin", "cos", "tan", "exp", "expm1", "log", "log1p", "log2", "log10", "tanh", "sinh", "arctan",
           "arcsin", "arctan2", "hypot", "logaddexp", "power"}


class _PowToCall(ast.NodeTransformer):
    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Pow):
            return ast.copy_location(ast.Call(ast.Name("power", ast.Load()), [node.left, node.right], []), node)
        return node


def _nudged(fn, steps):
    """*fn* with its float results moved by `next(steps)` ulps (each call takes the next count)."""
    def call(*args):
        r = fn(*args)
        k = next(steps)
        if isinstance(r, np.ndarray) and r.dtype.kind == "f" and k:
            moved = r
            for _ in range(1 if r.dtype == np.float16 else abs(k)):  # float16: one ulp is 1e-3 already
                moved = np.nextafter(moved, np.inf if k > 0 else -np.inf)
            # zeros and infinities are exact in every math library (sin(0), exp(inf)...)
            r = np.where(np.isfinite(r) & (r != 0), moved, r)
        return r
    return call


def numpy_eval(text, arrays, nudge=None):
    """*text* evaluated by NumPy over *arrays* (Python literals stay Python scalars: NEP 50).

    *nudge*: an iterator of ulp counts; every result of an INEXACT function is moved by the next one."""
    ns = dict(NP_FUNCS, power=np.power)
    if nudge is not None:
        ns.update({name: _nudged(ns[name], nudge) for name in INEXACT})
    ns.update(arrays)
    code = compile(ast.fix_missing_locations(_PowToCall().visit(ast.parse(text, mode="eval"))), "<expr>", "eval")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(eval(code, {}, ns))  # noqa: S307  (our own generated text)


NUDGES = (lambda: itertools.repeat(2), lambda: itertools.repeat(-2), lambda: itertools.cycle([2, -2]))


def unstable_mask(text, arrays, expected):
    """Where NumPy's result changes when the INEXACT functions are off by 2 ulps (a remainder or a floor
    of a transcendental, a comparison right at a tie...): there the last bit of the math library decides,
    and a correct server may differ from NumPy."""
    mask = np.zeros(expected.shape, bool)
    for make in NUDGES:
        other = numpy_eval(text, arrays, make())
        if expected.dtype.kind == "f":
            same = np.isclose(other, expected, rtol=tolerance(expected.dtype), atol=0, equal_nan=True)
        else:
            same = other == expected
        mask |= ~same
    return mask


def tolerance(dtype):
    """rtol of float comparisons: 1e-6, and for float16 (whose ulp is 1e-3 to 2e-3 of a value) 4e-3."""
    return {np.dtype("float16"): 4e-3}.get(np.dtype(dtype), 1e-6)


def mismatch(got, expected, skip=None):
    """None when *got* equals NumPy's *expected* (except where *skip* is true), else why not."""
    got = np.asarray(got)
    if got.shape != expected.shape:
        return f"shape {got.shape} != numpy {expected.shape}"
    if got.dtype != expected.dtype:
        return f"dtype {got.dtype} != numpy {expected.dtype}"
    if skip is not None and skip.any():
        got, expected = got[~skip], expected[~skip]
    if expected.dtype.kind == "f":
        nan_g, nan_e = np.isnan(got), np.isnan(expected)
        if not np.array_equal(nan_g, nan_e):
            idx = np.argwhere(nan_g != nan_e)[:3].tolist()
            return f"NaN positions differ at {idx}: got {got[tuple(np.array(idx).T)]}, numpy " \
                   f"{expected[tuple(np.array(idx).T)]}"
        ok = np.isclose(got, expected, rtol=tolerance(expected.dtype), atol=0, equal_nan=True)
        if not ok.all():
            idx = np.argwhere(~ok)[:3]
            sel = tuple(idx.T)
            return f"{(~ok).sum()} values differ, e.g. at {idx.tolist()}: got {got[sel]}, numpy {expected[sel]}"
        return None
    if not np.array_equal(got, expected):
        bad = got != expected
        idx = np.argwhere(bad)[:3]
        sel = tuple(idx.T)
        return f"{bad.sum()} values differ, e.g. at {idx.tolist()}: got {got[sel]}, numpy {expected[sel]}"
    return None


# --------------------------------------------------------------------------------------
# operands of the differential test


def make_values(rng, dtype, shape):
    dtype = np.dtype(dtype)
    n = math.prod(shape)
    if dtype.kind == "b":
        v = rng.random(n) < 0.5
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo = -20 if dtype.kind == "i" else 0
        v = rng.integers(lo, 41, n).astype(dtype)
        extremes = rng.random(n) < 0.04
        v[extremes] = rng.choice(np.array([info.min, info.max, info.max - 1], dtype=dtype), extremes.sum())
    else:
        v = rng.normal(0, 8, n).astype(dtype)
        v[rng.random(n) < 0.05] = 0
        v[rng.random(n) < 0.03] = np.nan
        v[rng.random(n) < 0.01] = np.inf
        v[rng.random(n) < 0.01] = -np.inf
        small = rng.random(n) < 0.2
        v[small] = np.round(v[small])  # integral floats: // and % and comparisons see ties
    return v.reshape(shape)


@pytest.fixture(scope="module")
def operands(admin, tmp_path_factory):
    """{(dtype, shape): (local NumPy array, remote Array)} for every dtype and shape of SHAPE_GROUPS."""
    rng = np.random.default_rng(SEED)
    tmp = tmp_path_factory.mktemp("lazy-operands")
    out = {}
    for group in SHAPE_GROUPS.values():
        for shape, (chunks, blocks) in group.items():
            for dt in DTYPES:
                arr = make_values(rng, dt, shape)
                name = f"@shared/diff/{dt}_{'x'.join(map(str, shape))}.b2nd"
                out[(dt, shape)] = (arr, upload_array(admin, tmp, arr, name, chunks, blocks))
    return out


# --------------------------------------------------------------------------------------
# the expression grammar

INT_LITERALS = ["0", "1", "2", "3", "7", "-1", "-5", "100", "200", "1000"]
FLOAT_LITERALS = ["0.5", "2.5", "-1.25", "3.0", "1e3", "0.1"]
BINOPS = ["+", "-", "*", "/", "//", "%", "**", "<", "<=", ">", ">=", "==", "!=", "&", "|", "^"]
BINOP_WEIGHTS = [6, 5, 6, 4, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
FUNCS1 = ["sqrt", "sin", "cos", "exp", "log", "abs", "floor", "ceil", "square", "tanh", "log1p", "sign",
          "negative", "isnan", "isfinite", "arctan", "expm1", "trunc", "log10", "signbit", "sinh", "isinf"]
FUNCS2 = ["arctan2", "maximum", "minimum", "hypot", "copysign", "logaddexp"]


def names_in(text, names):
    """The operand names *text* uses (whole words: `a` is not in `abs(b)`)."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text))
    return [n for n in names if n in words]


class Gen:
    def __init__(self, rng, names):
        self.rng = rng
        self.names = names

    def has_operand(self, text):
        return bool(names_in(text, self.names))

    def pick(self, seq, p=None):
        if p is not None:
            p = np.asarray(p, float)
            p = p / p.sum()
        return seq[self.rng.choice(len(seq), p=p)]

    def literal(self):
        return self.pick(INT_LITERALS) if self.rng.random() < 0.6 else self.pick(FLOAT_LITERALS)

    def expr(self, depth, need_operand=True):
        """An expression; with *need_operand*, one that names at least one operand."""
        r = self.rng.random()
        if depth <= 0 or r < 0.2:
            if need_operand or self.rng.random() < 0.7:
                return self.pick(self.names)
            return self.literal()
        r = self.rng.random()
        if r < 0.5:
            op = self.pick(BINOPS, BINOP_WEIGHTS)
            left_needs = self.rng.random() < 0.7
            left = self.expr(depth - 1, need_operand=left_needs)
            right = self.expr(depth - 1, need_operand=not left_needs)
            if op == "**" and self.rng.random() < 0.7:
                right = self.pick(["0", "1", "2", "3", "0.5", "2.0"])
                if not self.has_operand(left):
                    left = self.pick(self.names)
            return f"({left} {op} {right})"
        if r < 0.6:
            return f"{self.pick(['-', '~'])}({self.expr(depth - 1)})"
        if r < 0.78:
            return f"{self.pick(FUNCS1)}({self.expr(depth - 1)})"
        if r < 0.88:
            a = self.expr(depth - 1)
            b = self.expr(depth - 1, need_operand=self.rng.random() < 0.6)
            if self.rng.random() < 0.5 and self.has_operand(b):  # a literal only comes second
                a, b = b, a
            return f"{self.pick(FUNCS2)}({a}, {b})"
        if r < 0.93:
            lo, hi = sorted(self.rng.choice([-2, 0, 1, 3, 7], 2, replace=False))
            if self.rng.random() < 0.3:
                lo, hi = lo - 0.5, hi + 0.25
            return f"clip({self.expr(depth - 1)}, {lo}, {hi})"
        cond = f"({self.expr(depth - 1)} {self.pick(['<', '>', '==', '!=', '>=', '<='])} {self.literal()})"
        x = self.expr(depth - 1)
        y = self.expr(depth - 1, need_operand=False)
        return f"where({cond}, {x}, {y})"


def random_key(rng, shape):
    """A selection as the client sends it: ints and start:stop slices (`slice_`), the whole array, or
    (one key in eight) a list of coordinates in one dimension (`indices`)."""
    if rng.random() < 0.1:
        return ()
    fancy = int(rng.integers(0, len(shape))) if rng.random() < 0.125 else None
    key = []
    for d, n in enumerate(shape):
        r = rng.random()
        if d == fancy:
            key.append([int(v) for v in rng.integers(-n, n, int(rng.integers(1, 6)))])
        elif r < 0.15:
            key.append(int(rng.integers(-n, n)))
        elif r < 0.3:
            key.append(slice(None))
        else:
            start = int(rng.integers(0, n))
            stop = int(rng.integers(start + 1, n + 1))
            key.append(slice(start, stop))
    return tuple(key)


def numpy_key(key):
    """*key* for NumPy (a list is an index array there too; a tuple keeps it one)."""
    return tuple(np.asarray(k) if isinstance(k, list) else k for k in key)


def random_case(rng):
    """(text, {name: (dtype, shape)}) of one random expression over 1-3 operands of one shape group."""
    group = list(SHAPE_GROUPS)[rng.choice(len(SHAPE_GROUPS), p=[GROUP_WEIGHTS[g] for g in SHAPE_GROUPS])]
    shapes = list(SHAPE_GROUPS[group])
    nops = int(rng.choice([1, 2, 3], p=[0.2, 0.45, 0.35]))
    names = ["a", "b", "c"][:nops]
    ops = {}
    for i, name in enumerate(names):
        shape = shapes[0] if i == 0 or rng.random() < 0.55 else shapes[int(rng.integers(0, len(shapes)))]
        ops[name] = (DTYPES[int(rng.integers(0, len(DTYPES)))], shape)
    gen = Gen(rng, names)
    text = gen.expr(int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25])))
    used = {n: ops[n] for n in names_in(text, names)}
    return text, used


def upload_raw(client, text, remote, expected, path):
    """Save *text* as a hand-written expression: the JSON the client sends, with NumPy's dtype and shape
    declared (for expressions python-blosc2 refuses to build on the client side, e.g. `~` of integers)."""
    body = {"name": None, "expression": text, "func": None, "operands": {n: str(r) for n, r in remote.items()},
            "dtype": str(expected.dtype), "shape": list(expected.shape), "compute": False}
    client._post(f"{client.urlbase}/api/upload_lazyarr/{path}", body, auth_cookie=client.cookie, timeout=60)
    return client.get(path)


@cat2rs_only  # the reference computes with python-blosc2's dtypes, not NumPy's
def test_differential_random_expressions(admin, operands):
    """Random element-wise expressions, saved through the client: the dtype the server reports and a
    random selection of the result equal NumPy's.  Expressions that python-blosc2 will not build on the
    client side (it refuses `~`, `&`, `|` on integers) are sent as the JSON body the client would send."""
    rng = np.random.default_rng(SEED + 1)
    checked, rejected, problems, raw_sent, masked = 0, 0, [], 0, 0
    result_dtypes = collections.Counter()
    started = time.monotonic()
    i = 0
    while checked < N_EXPRESSIONS:
        i += 1
        assert i < 20 * N_EXPRESSIONS, f"too many expressions rejected by NumPy: {rejected}"
        text, used = random_case(rng)
        local = {n: operands[spec][0] for n, spec in used.items()}
        remote = {n: operands[spec][1] for n, spec in used.items()}
        try:
            expected_full = numpy_eval(text, local)
        except Exception:
            rejected += 1
            continue
        key = random_key(rng, expected_full.shape)
        result_dtypes[str(expected_full.dtype)] += 1
        desc = f"#{i} {text!r} over {used} key={key}"
        path = f"@personal/diff/e{i}.b2nd"
        checked += 1
        try:
            lazy = blosc2.lazyexpr(text, operands=remote)
        except Exception:
            lazy = None
        try:
            if lazy is None:
                raw_sent += 1
                arr = upload_raw(admin, text, remote, expected_full, path)
            else:
                arr = admin.upload(lazy, path)
        except httpx.HTTPStatusError as e:
            problems.append(f"{desc}: upload -> {e.response.status_code} {e.response.text[:300]}")
            continue
        info = admin.get_info(path)
        if info.get("dtype") != str(expected_full.dtype):
            problems.append(f"{desc}: info dtype {info.get('dtype')} != numpy {expected_full.dtype}")
        if tuple(info.get("shape", ())) != expected_full.shape:
            problems.append(f"{desc}: info shape {info.get('shape')} != numpy {expected_full.shape}")
        try:
            got = arr[key] if key else arr[()]
        except httpx.HTTPStatusError as e:
            problems.append(f"{desc}: fetch -> {e.response.status_code} {e.response.text[:300]}")
            continue
        skip = unstable_mask(text, local, expected_full)[numpy_key(key)]
        masked += int(skip.sum())
        why = mismatch(got, expected_full[numpy_key(key)], skip)
        if why:
            problems.append(f"{desc}: {why}")
    elapsed = time.monotonic() - started
    print(f"\n{checked} expressions checked in {elapsed:.1f}s ({raw_sent} sent as raw JSON); "
          f"{rejected} rejected by NumPy (not counted); {masked} values too sensitive to the last ulp of "
          f"libm not compared; result dtypes: {dict(result_dtypes)}")
    assert not problems, f"{len(problems)} of {checked} expressions wrong:\n" + "\n".join(problems[:40])


# python-blosc2's own idea of the result dtype (what the client declares) differs from NumPy's here;
# the server computes NumPy's and must not take the difference for the `blosc2.where` signature
DECLARED_DTYPE_DIFFERS = [
    ("clip(a > 0, -0.5, 7.25)", "int16", lambda a: np.clip(a > 0, -0.5, 7.25)),  # declared bool
    ("a % a", "bool", lambda a: a % a),  # declared bool, NumPy int8
    ("logaddexp(a, a)", "uint8", lambda a: np.logaddexp(a, a)),  # declared float32, NumPy float16
    ("copysign(a, a)", "int64", lambda a: np.copysign(a, a)),  # declared int64, NumPy float64
    ("clip(a, -2.5, 3.25) // 2", "uint16", lambda a: np.clip(a, -2.5, 3.25) // 2),  # declared uint16
    ("logaddexp(a, a)", "int32", lambda a: np.logaddexp(a, a)),  # declared "<class 'blosc2.schema.float32'>"
]


@cat2rs_only  # the reference computes with python-blosc2's dtypes, not NumPy's
@pytest.mark.parametrize("text,dtype,fn", DECLARED_DTYPE_DIFFERS,
                         ids=[f"{t}-{d}" for t, d, _ in DECLARED_DTYPE_DIFFERS])
def test_declared_dtype_differing_from_numpy_is_accepted(admin, operands, text, dtype, fn):
    """A valid expression whose dtype, as python-blosc2 declares it, is not NumPy's result dtype: saved,
    described with NumPy's dtype and computed as NumPy computes it (only a bool result declared as
    something else is the `blosc2.where` signature)."""
    a, ra = operands[(dtype, (20, 30))]
    with np.errstate(all="ignore"):
        expected = np.asarray(fn(a))
    lazy = blosc2.lazyexpr(text, operands={"a": ra})
    path = "@personal/declared/" + "".join(ch for ch in text + dtype if ch.isalnum()) + ".b2nd"
    arr, refused = None, None
    try:
        arr = admin.upload(lazy, path)
    except httpx.HTTPStatusError as e:
        refused = f"{e.response.status_code} {e.response.text[:400]}"
    assert refused is None, \
        f"{text!r} over {dtype} (client declared {str(lazy.dtype)!r}, NumPy says {expected.dtype}): {refused}"
    assert admin.get_info(path)["dtype"] == str(expected.dtype)
    why = mismatch(arr[()], expected)
    assert why is None, why


# Python literals outside the operand's range (NEP 50): NumPy accepts these (comparisons against any
# value, true division and float functions convert the literal to the float type of the loop) ...
OUT_OF_RANGE_OK = ["a < -1", "a == 300", "a != -5", "a >= 1e3", "a / -1", "a / 1000", "arctan2(a, -1)",
                   "hypot(a, -1)", "clip(a, -1, 300)", "a * 2.5", "where(a > 1, a, -1)"]
# ... and these are NumPy errors (OverflowError, TypeError, ValueError): the server answers 400, it does
# not compute something else
NUMPY_REFUSES = [("a + 1000", "uint8"), ("maximum(a, -1)", "uint8"), ("a // -1", "uint8"), ("a - 300", "uint8"),
                 ("a ** -1", "int16"), ("-(a)", "bool"), ("a - a", "bool"), ("~(a)", "float64"),
                 ("a & a", "float64"), ("a | 1", "float32"), ("sign(a)", "bool")]


def numpy_or_error(text, arrays):
    try:
        return numpy_eval(text, arrays), None
    except Exception as e:
        return None, e


@cat2rs_only  # the reference computes with python-blosc2's dtypes, not NumPy's
@pytest.mark.parametrize("text", OUT_OF_RANGE_OK)
def test_out_of_range_literal_accepted(admin, operands, text):
    a, ra = operands[("uint8", (20, 30))]
    expected, err = numpy_or_error(text, {"a": a})
    assert err is None, err
    path = "@personal/oor/" + "".join(ch for ch in text if ch.isalnum()) + ".b2nd"
    arr, refused = None, None
    try:
        arr = upload_raw(admin, text, {"a": ra}, expected, path)
    except httpx.HTTPStatusError as e:
        refused = f"{e.response.status_code} {e.response.text[:300]}"
    assert refused is None, f"{text!r} over uint8 (NumPy: {expected.dtype}): {refused}"
    assert admin.get_info(path)["dtype"] == str(expected.dtype)
    why = mismatch(arr[()], expected)
    assert why is None, why


@cat2rs_only  # the reference computes with python-blosc2's dtypes, not NumPy's
@pytest.mark.parametrize("text,dtype", NUMPY_REFUSES, ids=[f"{t}-{d}" for t, d in NUMPY_REFUSES])
def test_numpy_refusals_are_400(admin, operands, text, dtype):
    a, ra = operands[(dtype, (20, 30))]
    _, err = numpy_or_error(text, {"a": a})
    assert err is not None, f"NumPy computes {text!r} over {dtype}"
    path = "@personal/refused/" + "".join(ch for ch in text + dtype if ch.isalnum()) + ".b2nd"
    with pytest.raises(httpx.HTTPStatusError) as exc:  # NumPy has no answer: declare the operand's dtype
        upload_raw(admin, text, {"a": ra}, a, path)
    assert status_of(exc) == 400, (status_of(exc), detail_of(exc))
    assert detail_of(exc).startswith("Invalid name or expression: "), detail_of(exc)
    if isinstance(err, OverflowError):
        assert "out of bounds" in detail_of(exc), detail_of(exc)


@cat2rs_only  # the reference computes with python-blosc2's dtypes, not NumPy's
def test_numpy_runtime_error_is_400(admin, operands, raw):
    """`a ** b` over integers is valid until a negative exponent is met: saved, and its fetch is a 400."""
    a, ra = operands[("int16", (20, 30))]
    b, rb = operands[("int8", (20, 30))]
    assert (b < 0).any()
    save(admin, "a ** b", {"a": ra, "b": rb}, "@personal/refused/pow.b2nd")
    r = raw.get("/api/fetch/@personal/refused/pow.b2nd")
    assert r.status_code == 400, (r.status_code, r.text[:200])
    assert "negative integer powers" in r.json()["detail"], r.text


# --------------------------------------------------------------------------------------
# chains


def test_chain_of_saved_expressions(admin, tmp_path):
    """An expression over a saved expression over a saved expression, and mixed with stored data."""
    rng = np.random.default_rng(SEED + 2)
    a = rng.integers(-100, 100, (25, 40)).astype(np.int32)
    b = rng.normal(size=(40,)).astype(np.float32)
    ra = upload_array(admin, tmp_path, a, "@personal/chain/a.b2nd", (10, 16), (5, 8))
    rb = upload_array(admin, tmp_path, b, "@personal/chain/b.b2nd", (16,), (8,))
    e1 = save(admin, "a + 1", {"a": ra}, "@personal/chain/e1.b2nd")
    e2 = save(admin, "e * 2", {"e": e1}, "@personal/chain/e2.b2nd")
    e3 = admin.upload(e2 - ra, "@personal/chain/e3.b2nd")  # operator form: the client builds the LazyExpr
    e4 = save(admin, "where(e3 > 0, e2 * b, sqrt(abs(e1)))", {"e3": e3, "e2": e2, "b": rb, "e1": e1},
              "@personal/chain/e4.b2nd")
    x1 = a + 1
    x2 = x1 * 2
    x3 = x2 - a
    x4 = np.where(x3 > 0, x2 * b, np.sqrt(np.abs(x1)))
    for arr, expected, path in ((e1, x1, "e1"), (e2, x2, "e2"), (e3, x3, "e3"), (e4, x4, "e4")):
        info = admin.get_info(f"@personal/chain/{path}.b2nd")
        assert info["dtype"] == str(expected.dtype), (path, info)
        assert tuple(info["shape"]) == expected.shape, (path, info)
        assert "expression" in info, (path, info)
        for key in ((), (slice(3, 17), slice(5, 33)), (7,), (slice(None), 39)):
            why = mismatch(arr[key] if key else arr[()], expected[key])
            assert why is None, (path, key, why)
    info = admin.get_info("@personal/chain/e2.b2nd")
    assert set(info) == {"shape", "dtype", "expression", "operands", "mtime"}, info
    assert list(info["operands"].values()) == ["@personal/chain/e1.b2nd"], info
    assert sorted(admin.get_info("@personal/chain/e4.b2nd")["operands"].values()) == sorted(
        f"@personal/chain/{n}.b2nd" for n in ("e3", "e2", "b", "e1")), admin.get_info("@personal/chain/e4.b2nd")


def test_operands_are_read_at_fetch_time(admin, tmp_path):
    """An expression is evaluated on every fetch: replacing an operand changes the result."""
    a = np.arange(60, dtype=np.int64).reshape(6, 10)
    ra = upload_array(admin, tmp_path, a, "@personal/live/a.b2nd", (4, 4), (2, 2))
    e = save(admin, "a * 3", {"a": ra}, "@personal/live/e.b2nd")
    np.testing.assert_array_equal(e[:], a * 3)
    upload_array(admin, tmp_path, a - 1000, "@personal/live/a.b2nd", (4, 4), (2, 2))
    np.testing.assert_array_equal(admin.fetch("@personal/live/e.b2nd"), (a - 1000) * 3)


def key_string(key):
    """A key as the `slice_` parameter spells it (steps included)."""
    parts = []
    for k in key:
        if isinstance(k, int):
            parts.append(str(k))
        else:
            part = ("" if k.start is None else str(k.start)) + ":" + ("" if k.stop is None else str(k.stop))
            parts.append(part + (f":{k.step}" if k.step is not None else ""))
    return ",".join(parts)


def raw_fetch(http, path, key):
    r = http.get(f"/api/fetch/{path}", params={"slice_": key_string(key)})
    if r.status_code != 200:
        return r.status_code, r.text[:200]
    arr = blosc2.ndarray_from_cframe(r.content)
    return 200, (arr[()] if arr.ndim == 0 else arr[:])


@pytest.mark.reference_bug("resets the connection on a stepped selection of an expression")
def test_fetch_with_steps_and_indices(admin, raw, tmp_path):
    """Selections the client does not send as plain boxes: steps (raw `slice_`, as far as the server
    takes them for a stored array) and coordinate lists (`indices`)."""
    rng = np.random.default_rng(SEED + 9)
    a = rng.integers(-30, 30, (23, 17)).astype(np.int16)
    ra = upload_array(admin, tmp_path, a, "@personal/steps/a.b2nd", (8, 8), (4, 4))
    e = save(admin, "a * a - 3", {"a": ra}, "@personal/steps/e.b2nd")
    expected = a * a - 3
    for key in ((slice(1, 20, 3), slice(None, None, 2)), (slice(None, None, 5), 4), (slice(2, 3), slice(0, 17, 16)),
                (slice(None, None, -1), slice(3, 15)), (slice(20, 2, -3), slice(None, None, -2))):
        stored_status, _ = raw_fetch(raw, "@personal/steps/a.b2nd", key)
        status, got = raw_fetch(raw, "@personal/steps/e.b2nd", key)
        if status != 200:
            # refused only where the server refuses the same selection of a stored array
            assert 400 <= status < 500 and stored_status != 200, (key, stored_status, status, got)
            continue
        why = mismatch(got, expected[key])
        assert why is None, (key, why)
    for key in (([0, 5, 22, 5, -1], slice(None)), (slice(2, 9), [16, 0, 3]), ([3], 7), (4, [1, 2, -2])):
        why = mismatch(e[key], expected[numpy_key(key)])
        assert why is None, (key, why)


def test_overwrite_and_replace(admin, tmp_path):
    """Saving over an existing path replaces what was there: lazy over lazy, lazy over a stored array,
    and a stored array over a lazy."""
    a = np.arange(50, dtype=np.float32)
    ra = upload_array(admin, tmp_path, a, "@personal/ow/a.b2nd", (16,), (8,))
    save(admin, "a + 1", {"a": ra}, "@personal/ow/e.b2nd")
    e = save(admin, "a * 10", {"a": ra}, "@personal/ow/e.b2nd")
    assert admin.get_info("@personal/ow/e.b2nd")["expression"] != "(o0 + 1)"
    np.testing.assert_array_equal(e[:], a * 10)
    upload_array(admin, tmp_path, a[:7], "@personal/ow/s.b2nd")
    e = save(admin, "a - 1", {"a": ra}, "@personal/ow/s.b2nd")
    np.testing.assert_array_equal(e[:], a - 1)
    assert "expression" in admin.get_info("@personal/ow/s.b2nd")
    upload_array(admin, tmp_path, a[:7], "@personal/ow/e.b2nd")
    info = admin.get_info("@personal/ow/e.b2nd")
    assert "expression" not in info and info["shape"] == [7], info
    np.testing.assert_array_equal(admin.fetch("@personal/ow/e.b2nd"), a[:7])


@pytest.mark.reference_bug("500 for an expression whose operand is gone")
def test_removed_operand(admin, raw, tmp_path):
    """An expression whose operand was removed afterwards: its fetch and chunk are 4xx (not a 5xx, not data)."""
    a = np.arange(40, dtype=np.int32)
    ra = upload_array(admin, tmp_path, a, "@personal/gone/a.b2nd", (16,), (8,))
    save(admin, "a + 1", {"a": ra}, "@personal/gone/e.b2nd")
    admin.remove("@personal/gone/a.b2nd")
    for url, params in (("/api/fetch/@personal/gone/e.b2nd", {}), ("/api/chunk/@personal/gone/e.b2nd", {"nchunk": 0}),
                        ("/api/download/@personal/gone/e.b2nd", {})):
        r = raw.get(url, params=params)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text[:200])


@pytest.mark.reference_bug("500 on a cycle of expressions")
def test_cycles_do_not_hang_or_crash(srv, admin, raw, tmp_path):
    """An expression made to refer to itself (directly, or through another one) by overwriting: refused
    when saved or when read (4xx), and the server stays up."""
    a = np.arange(30, dtype=np.int64)
    ra = upload_array(admin, tmp_path, a, "@personal/cyc/a.b2nd", (8,), (4,))
    e1 = save(admin, "a + 1", {"a": ra}, "@personal/cyc/e1.b2nd")
    e2 = save(admin, "e1 * 2", {"e1": e1}, "@personal/cyc/e2.b2nd")
    # e1 := e2 + 1 closes the loop e1 -> e2 -> e1; e2 := e2 + 1 refers to itself
    for text, ops, path in (("e2 + 1", {"e2": e2}, "@personal/cyc/e1.b2nd"),
                            ("x + 1", {"x": "@personal/cyc/e2.b2nd"}, "@personal/cyc/e2.b2nd")):
        body = {"name": None, "expression": text, "func": None, "operands": {k: str(v) for k, v in ops.items()},
                "dtype": "int64", "shape": [30], "compute": False}
        r = raw.post(f"/api/upload_lazyarr/{path}", json=body)
        assert r.status_code in (200, 400), (text, r.status_code, r.text[:200])
        if r.status_code == 200:
            for url in (f"/api/fetch/{path}", f"/api/info/{path}"):
                r2 = raw.get(url)
                assert url.startswith("/api/info") or 400 <= r2.status_code < 500, (text, url, r2.status_code)
        assert srv.alive()


@pytest.fixture(scope="module")
def h5proxy(admin, tmp_path_factory):
    """A gzip 3-D uint16 HDF5 dataset uploaded to @shared/lazyh5/det.h5 and unfolded: (values, proxy Array)."""
    rng = np.random.default_rng(SEED + 3)
    data = rng.integers(0, 40, (8, 30, 26)).astype(np.uint16)
    data[rng.random(data.shape) < 0.02] = 65535
    local = tmp_path_factory.mktemp("lazy-h5") / "det.h5"
    with h5py.File(local, "w") as f:
        f.create_dataset("entry/data", data=data, chunks=(2, 16, 13), compression="gzip", compression_opts=4)
    admin.upload(local, "@shared/lazyh5/det.h5")
    admin.unfold("@shared/lazyh5/det.h5")
    return data, admin.get("@shared/lazyh5/det/entry/data.b2nd")


@pytest.mark.reference_bug("wrong values for an expression over an expression over a proxy")
def test_expression_over_hdf5_proxy(admin, h5proxy):
    """`where(p < 10, p * 32000, p)` over an unfolded gzip HDF5 dataset, as the tutorial means it."""
    data, proxy = h5proxy
    e = save(admin, "where(p < 10, p * 32000, p)", {"p": proxy}, "@personal/h5/where.b2nd")
    with np.errstate(over="ignore"):
        expected = np.where(data < 10, data * 32000, data)
    info = admin.get_info("@personal/h5/where.b2nd")
    assert info["dtype"] == "uint16" and tuple(info["shape"]) == data.shape, info
    assert info["operands"] == {k: "@shared/lazyh5/det/entry/data.b2nd" for k in info["operands"]}, info
    for key in ((), (5,), (slice(1, 7), slice(3, 29), slice(0, 13)), (slice(None), 17, slice(2, 25))):
        why = mismatch(e[key] if key else e[()], expected[key])
        assert why is None, (key, why)
    # a chain through it, mixing the proxy with a float expression
    e2 = save(admin, "sqrt(w) + p / 2", {"w": e, "p": proxy}, "@personal/h5/chain.b2nd")
    expected2 = np.sqrt(expected) + data / 2
    why = mismatch(e2[2:5, :, 4:20], expected2[2:5, :, 4:20])
    assert why is None, why


# --------------------------------------------------------------------------------------
# chunks, compute=True, download, python-blosc2 on the carrier


@pytest.mark.parametrize("text,fn", [
    ("a * 3 + 1", lambda a: a * 3 + 1),
    pytest.param("a / 4", lambda a: a / 4,
                 marks=pytest.mark.reference_bug("info dtype is \"<class 'blosc2.schema.float64'>\"")),
    ("a > 100", lambda a: a > 100)], ids=["a*3+1", "a/4", "a>100"])
def test_chunk_of_expression(admin, tmp_path, text, fn):
    """`/api/chunk` of an expression is the result's chunk in its operand's geometry: decompressed, it
    is the expression over that operand chunk (the last chunk's padding ignored)."""
    a = np.random.default_rng(SEED + 4).integers(-500, 500, 1050).astype(np.int32)
    chunk = 100
    ra = upload_array(admin, tmp_path, a, "@personal/chunks/a.b2nd", (chunk,), (25,))
    name = "@personal/chunks/e_" + "".join(ch for ch in text if ch.isalnum()) + ".b2nd"
    e = save(admin, text, {"a": ra}, name)
    expected = fn(a)
    nchunks = math.ceil(a.size / chunk)
    for n in range(nchunks):
        raw_chunk = admin.get_chunk(name, n)
        values = np.frombuffer(blosc2.decompress2(raw_chunk), dtype=expected.dtype)
        assert values.size == chunk, (n, values.size)
        part = expected[n * chunk:(n + 1) * chunk]
        np.testing.assert_array_equal(values[:part.size], part, err_msg=f"chunk {n}")
    assert e.dtype == expected.dtype


def test_compute_true_stores_the_result(admin, tmp_path):
    """`compute=True` stores a regular array (chunks, no expression) with the computed values."""
    rng = np.random.default_rng(SEED + 5)
    a = rng.integers(0, 1000, (30, 20)).astype(np.uint16)
    b = rng.normal(size=(30, 20))
    ra = upload_array(admin, tmp_path, a, "@personal/comp/a.b2nd", (16, 8), (4, 4))
    rb = upload_array(admin, tmp_path, b, "@personal/comp/b.b2nd", (16, 8), (4, 4))
    e = save(admin, "a * b + sin(a)", {"a": ra, "b": rb}, "@personal/comp/e.b2nd", compute=True)
    info = admin.get_info("@personal/comp/e.b2nd")
    assert "expression" not in info and "chunks" in info, info
    expected = a * b + np.sin(a)
    assert info["dtype"] == "float64" and tuple(info["shape"]) == expected.shape, info
    why = mismatch(e[:], expected)
    assert why is None, why
    # the stored array does not follow its operands any more
    upload_array(admin, tmp_path, a + 1, "@personal/comp/a.b2nd", (16, 8), (4, 4))
    why = mismatch(admin.fetch("@personal/comp/e.b2nd"), expected)
    assert why is None, why


@pytest.mark.reference_bug("downloads the carrier, whose operands are missing locally")
def test_download_of_expression(admin, tmp_path):
    """`/api/download` of a lazy expression gives the computed array, which python-blosc2 opens."""
    rng = np.random.default_rng(SEED + 6)
    a = rng.integers(-50, 50, (40, 12)).astype(np.int16)
    ra = upload_array(admin, tmp_path, a, "@personal/dl/a.b2nd", (16, 8), (8, 4))
    save(admin, "(a * a) % 7 - a", {"a": ra}, "@personal/dl/e.b2nd")
    local = admin.download("@personal/dl/e.b2nd", tmp_path / "out")
    got = blosc2.open(str(local))
    assert isinstance(got, blosc2.NDArray), type(got)
    expected = (a * a) % 7 - a
    why = mismatch(got[:], expected)
    assert why is None, why


def test_python_blosc2_opens_carrier(srv, admin, tmp_path):
    """A carrier cat2rs wrote is a python-blosc2 lazy expression: opened from the state dir, with
    operands in the same @personal dir and in @shared, it computes the same values."""
    rng = np.random.default_rng(SEED + 7)
    a = rng.normal(size=(20, 16)).astype(np.float32)
    b = rng.integers(0, 9, (16,)).astype(np.int64)
    ra = upload_array(admin, tmp_path, a, "@personal/carrier/a.b2nd", (8, 8), (4, 4))
    rb = upload_array(admin, tmp_path, b, "@shared/carrier/b.b2nd", (8,), (4,))
    save(admin, "a + 1", {"a": ra}, "@personal/carrier/e1.b2nd")
    e1 = admin.get("@personal/carrier/e1.b2nd")
    save(admin, "where(a > 0, a * b, e1)", {"a": ra, "b": rb, "e1": e1}, "@personal/carrier/e2.b2nd")
    home = srv.personal_dir(ADMIN[0])
    for name, expected in (("e1", a + 1), ("e2", np.where(a > 0, a * b, a + 1))):
        obj = blosc2.open(str(home / "carrier" / f"{name}.b2nd"))
        assert isinstance(obj, blosc2.LazyExpr), (name, type(obj))
        why = mismatch(obj[:], expected)
        assert why is None, (name, why)
        why = mismatch(admin.fetch(f"@personal/carrier/{name}.b2nd"), expected)
        assert why is None, (name, why)


def cparams_of(frame_bytes):
    """(codec, clevel, filters) of an NDArray frame."""
    cp = blosc2.ndarray_from_cframe(frame_bytes).schunk.cparams
    return cp.codec, cp.clevel, list(cp.filters)


@pytest.mark.local_state  # python-blosc2 saves a carrier into the state directory
@cat2rs_only  # the reference sends the unevaluated carrier as the download of a lazy dataset
def test_results_are_compressed_with_the_datasets_cparams(srv, admin, raw, tmp_path):
    """Computed answers (download, compute=True) use the cparams the expression's carrier holds:
    those cat2rs gave it, or those python-blosc2 was told to save it with."""
    a = np.arange(40 * 30, dtype=np.uint16).reshape(40, 30)
    ra = upload_array(admin, tmp_path, a, "@personal/cp/a.b2nd", (10, 30), (5, 30))
    save(admin, "a * 2", {"a": ra}, "@personal/cp/e.b2nd")
    home = srv.personal_dir(ADMIN[0])
    ours = cparams_of((home / "cp" / "e.b2nd").read_bytes())
    r = raw.get("/api/download/@personal/cp/e.b2nd")
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert cparams_of(r.content) == ours
    np.testing.assert_array_equal(blosc2.ndarray_from_cframe(r.content)[:], a * 2)
    save(admin, "a * 2", {"a": ra}, "@personal/cp/stored.b2nd", compute=True)
    assert cparams_of((home / "cp" / "stored.b2nd").read_bytes()) == ours

    # A carrier python-blosc2 saved with cparams of its own.
    expr = blosc2.lazyexpr("a + 1", operands={"a": blosc2.open(str(home / "cp" / "a.b2nd"))})
    zlib3 = blosc2.CParams(codec=blosc2.Codec.ZLIB, clevel=3, filters=[blosc2.Filter.SHUFFLE])
    expr.save(urlpath=str(home / "cp" / "z.b2nd"), cparams=zlib3)
    r = raw.get("/api/download/@personal/cp/z.b2nd")
    assert r.status_code == 200, (r.status_code, r.text[:200])
    codec, clevel, filters = cparams_of(r.content)
    assert (codec, clevel, filters[0]) == (blosc2.Codec.ZLIB, 3, blosc2.Filter.SHUFFLE)
    np.testing.assert_array_equal(blosc2.ndarray_from_cframe(r.content)[:], a + 1)


def test_legacy_lazyexpr_endpoint(admin, raw, tmp_path):
    """`POST /api/lazyexpr/` (name required) saves `@personal/<name>.b2nd`."""
    a = np.arange(24, dtype=np.int32).reshape(4, 6)
    upload_array(admin, tmp_path, a, "@personal/legacy/a.b2nd", (2, 3), (1, 3))
    body = {"name": "legacy_e", "expression": "a * 2 + 1", "func": None,
            "operands": {"a": "@personal/legacy/a.b2nd"}, "dtype": "int32", "shape": [4, 6], "compute": False}
    r = raw.post("/api/lazyexpr/", json=body)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json() == "@personal/legacy_e.b2nd"
    np.testing.assert_array_equal(admin.fetch("@personal/legacy_e.b2nd"), a * 2 + 1)


# --------------------------------------------------------------------------------------
# permissions


@pytest.mark.reference_bug("operands are read without the caller's permissions")
def test_public_expression_over_shared_data(srv, admin, alice, anon, raw_anon, tmp_path):
    """An expression saved in @public over @shared data: anonymous callers get a 401, never the data;
    logged-in users (superuser or not) read it."""
    a = np.arange(100, dtype=np.float64).reshape(10, 10)
    ra = upload_array(admin, tmp_path, a, "@shared/perm/secret.b2nd", (4, 4), (2, 2))
    save(admin, "a + 1", {"a": ra}, "@public/perm/e.b2nd")
    np.testing.assert_array_equal(admin.fetch("@public/perm/e.b2nd"), a + 1)
    np.testing.assert_array_equal(alice.fetch("@public/perm/e.b2nd", (slice(2, 5),)), (a + 1)[2:5])
    for url, params in (("/api/fetch/@public/perm/e.b2nd", {}),
                        ("/api/fetch/@public/perm/e.b2nd", {"slice_": "1:3"}),
                        ("/api/chunk/@public/perm/e.b2nd", {"nchunk": 0}),
                        ("/api/download/@public/perm/e.b2nd", {})):
        r = raw_anon.get(url, params=params)
        assert r.status_code == 401, (url, params, r.status_code, r.text[:200])
    with pytest.raises(httpx.HTTPStatusError) as exc:
        anon.fetch("@public/perm/e.b2nd")
    assert status_of(exc) == 401, (status_of(exc), detail_of(exc))


def test_public_expression_over_public_data_is_anonymous(admin, anon, tmp_path):
    """The 401 above comes from the operand, not from being a lazy expression: over @public data an
    anonymous caller reads it."""
    a = np.arange(30, dtype=np.uint8).reshape(5, 6)
    ra = upload_array(admin, tmp_path, a, "@public/open/a.b2nd", (2, 3), (1, 3))
    save(admin, "a * 2", {"a": ra}, "@public/open/e.b2nd")
    np.testing.assert_array_equal(anon.fetch("@public/open/e.b2nd"), a * 2)
    np.testing.assert_array_equal(anon.get("@public/open/e.b2nd")[1:3, 2:5], (a * 2)[1:3, 2:5])


@pytest.mark.reference_bug("operands are read without the caller's permissions")
def test_shared_expression_over_personal_data_does_not_leak(srv, alice, bob, raw_anon, tmp_path):
    """Alice saves in @shared an expression over her @personal data: she reads it; Bob (who has a
    file at the same @personal path) and anonymous callers never get her data."""
    secret = np.arange(20, dtype=np.int32) * 7
    decoy = np.full(20, -1, dtype=np.int32)
    rs = upload_array(alice, tmp_path, secret, "@personal/priv/x.b2nd", (8,), (4,))
    upload_array(bob, tmp_path, decoy, "@personal/priv/x.b2nd", (8,), (4,))
    save(alice, "x + 1", {"x": rs}, "@shared/leak/e.b2nd")
    np.testing.assert_array_equal(alice.fetch("@shared/leak/e.b2nd"), secret + 1)
    bob_http = srv.http(bob.cookie, timeout=60)
    for http, who in ((bob_http, "bob"), (raw_anon, "anonymous")):
        for url, params in (("/api/fetch/@shared/leak/e.b2nd", {}), ("/api/chunk/@shared/leak/e.b2nd", {"nchunk": 0}),
                            ("/api/download/@shared/leak/e.b2nd", {})):
            r = http.get(url, params=params)
            assert 400 <= r.status_code < 500, (who, url, r.status_code, r.content[:100])


@pytest.mark.reference_bug("500 for a missing operand")
def test_personal_operand_is_the_callers_own(admin, alice, tmp_path):
    """Alice's @personal names her own dir: her expression over `@personal/...` cannot reach the
    admin's file of the same name."""
    a = np.arange(10, dtype=np.int32)
    upload_array(admin, tmp_path, a, "@personal/mine/x.b2nd")
    body = {"a": "@personal/mine/x.b2nd"}
    expr = {"name": None, "expression": "a + 1", "func": None, "operands": body, "dtype": "int32",
            "shape": [10], "compute": False}
    with pytest.raises(httpx.HTTPStatusError) as exc:
        alice._post(f"{alice.urlbase}/api/upload_lazyarr/@personal/mine/e.b2nd", expr, auth_cookie=alice.cookie,
                    timeout=60)
    assert status_of(exc) in (400, 404), (status_of(exc), detail_of(exc))


# --------------------------------------------------------------------------------------
# errors


def base_body(**kw):
    body = {"name": None, "expression": "(a + 1)", "func": None, "operands": {"a": "@shared/errs/a.b2nd"},
            "dtype": "int64", "shape": [12], "compute": False}
    body.update(kw)
    return body


@pytest.fixture(scope="module")
def err_operand(admin, tmp_path_factory):
    a = np.arange(12, dtype=np.int64)
    return a, upload_array(admin, tmp_path_factory.mktemp("lazy-errs"), a, "@shared/errs/a.b2nd", (5,), (5,))


def post_lazy(raw, path, body):
    return raw.post(f"/api/upload_lazyarr/{path}", json=body)


def _double(inputs, output, offset):
    output[:] = inputs[0] * 2


@cat2rs_only  # the reference runs UDFs
def test_error_udf_is_not_run(admin, err_operand):
    """A LazyUDF (Python source in `func`) is refused: its code is never run."""
    _, ra = err_operand
    udf = blosc2.lazyudf(_double, (ra,), np.int64, shape=(12,))
    detail = expect_error(400, admin.upload, udf, "@personal/errs/udf.b2nd")
    assert "Python user-defined functions are not run by this server" in detail, detail


@cat2rs_only  # the reference stores the bare condition
def test_error_client_side_where_is_explained(admin, err_operand):
    """`blosc2.where(c, x, y)` reaches the server as the bare condition with the declared dtype of x/y:
    refused with a message naming `where` and the form that works."""
    _, ra = err_operand
    detail = expect_error(400, admin.upload, blosc2.where(ra < 10, ra * 32000, ra), "@personal/errs/w.b2nd")
    assert "where" in detail and "lazyexpr(" in detail, detail


def test_error_path_must_end_b2nd(admin, raw, err_operand):
    _, ra = err_operand
    detail = expect_error(400, save, admin, "a + 1", {"a": ra}, "@personal/errs/e.txt")
    assert detail == 'Invalid name or expression: If path extension provided must be ".b2nd".', detail
    r = post_lazy(raw, "@personal/errs/e", base_body())
    assert r.status_code == 400, (r.status_code, r.text)
    assert "must be \".b2nd\"" in r.json()["detail"], r.text


@cat2rs_only  # the reference says "Unknown symbol: zz"
def test_error_unknown_operand_name(raw, err_operand):
    r = post_lazy(raw, "@personal/errs/e.b2nd", base_body(expression="(a + zz)"))
    assert r.status_code == 400, (r.status_code, r.text)
    detail = r.json()["detail"]
    assert detail.startswith("Expression error: ") and "is not in the list of available datasets" in detail, detail
    assert "zz" in detail, detail


@pytest.mark.reference_bug("500 for a missing operand (protocol.md §7.2)")
def test_error_missing_operand_path(admin, raw, err_operand):
    r = post_lazy(raw, "@personal/errs/e.b2nd", base_body(operands={"a": "@shared/errs/nope.b2nd"}))
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["detail"], r.text
    # and nothing was left at the target
    with pytest.raises(httpx.HTTPStatusError) as exc:
        admin.get_info("@personal/errs/e.b2nd")
    assert status_of(exc) == 404


@pytest.mark.parametrize("expression", ["(a +* 1)", "(a + 1", "a +", "(a + 1))", "a $ 1", ""])
def test_error_syntax(raw, err_operand, expression):
    r = post_lazy(raw, "@personal/errs/syntax.b2nd", base_body(expression=expression))
    assert r.status_code == 400, (expression, r.status_code, r.text)
    assert r.json()["detail"].startswith("Invalid name or expression: "), (expression, r.text)


def test_error_anonymous_upload(anon, raw_anon, err_operand):
    _, ra = err_operand
    expect_error(401, save, anon, "a + 1", {"a": ra}, "@personal/errs/anon.b2nd")
    expect_error(401, save, anon, "a + 1", {"a": ra}, "@shared/errs/anon.b2nd")
    r = post_lazy(raw_anon, "@public/errs/anon.b2nd", base_body())
    assert r.status_code == 401, (r.status_code, r.text)


@pytest.mark.parametrize("missing", ["name", "expression", "func", "operands", "dtype", "shape", "compute"])
def test_error_missing_json_key(raw, err_operand, missing):
    body = base_body()
    del body[missing]
    r = post_lazy(raw, "@personal/errs/missing.b2nd", body)
    assert r.status_code == 422, (missing, r.status_code, r.text)


# --------------------------------------------------------------------------------------
# interop: carriers written by the reference server


@pytest.fixture(scope="module")
def interop(tmp_path_factory):
    """The reference server saves expressions (with the official client) into a state dir and stops;
    cat2rs starts on that state dir.  Yields (cat2rs server, {path: (expected values, reference info)})."""
    work = tmp_path_factory.mktemp("lazy-interop")
    state = work / "state"
    tmp = work / "tmp"
    tmp.mkdir()
    rng = np.random.default_rng(SEED + 8)
    a = rng.integers(-1000, 1000, (24, 18)).astype(np.int32)
    b = rng.normal(size=(18,))
    expected = {
        "@personal/ref/e_a1.b2nd": a + 1,
        "@shared/ref/e_chain.b2nd": (a + 1) * 2,
        "@shared/ref/e_sin.b2nd": np.sin(a) ** 2 + b,
    }
    ref = start_reference(work / "reference", state)
    infos = {}
    try:
        ref.add_user(*ADMIN, superuser=True)
        rc = ref.client(ADMIN, timeout=60)
        ra = upload_array(rc, tmp, a, "@personal/ref/a.b2nd", (10, 8), (5, 4))
        rb = upload_array(rc, tmp, b, "@shared/ref/b.b2nd", (8,), (4,))
        e1 = rc.upload(ra + 1, "@personal/ref/e_a1.b2nd")
        rc.upload(blosc2.lazyexpr("e * 2", operands={"e": e1}), "@shared/ref/e_chain.b2nd")
        rc.upload(blosc2.lazyexpr("sin(a) ** 2 + b", operands={"a": ra, "b": rb}), "@shared/ref/e_sin.b2nd")
        for path in expected:
            infos[path] = rc.get_info(path)
    finally:
        ref.close()
    ours = _start(work / "cat2rs", statedir=state)
    try:
        yield ours, {p: (expected[p], infos[p]) for p in expected}
    finally:
        ours.close()


@pytest.mark.skipif(cat2rs_launch.check_available(cat2rs_launch.REFERENCE) is not None,
                    reason="the reference server is not installed")
def test_interop_reference_carriers_served(interop):
    """Carriers the reference server wrote (over @personal and @shared data, and over another carrier):
    cat2rs's info (shape, dtype, expression, operands) equals the reference's and its data NumPy's."""
    ours, cases = interop
    oc = ours.client(ADMIN, timeout=60)
    problems = []
    for path, (expected, ref_info) in cases.items():
        info = oc.get_info(path)
        for k in ("shape", "dtype", "expression", "operands"):
            if info.get(k) != ref_info.get(k):
                problems.append(f"{path}: {k} {info.get(k)!r} != reference {ref_info.get(k)!r}")
        for key in ((), (slice(3, 20), slice(2, 17)), (5,)):
            try:
                got = oc.fetch(path, key if key else None)
            except httpx.HTTPStatusError as e:
                problems.append(f"{path} {key}: {e.response.status_code} {e.response.text[:200]}")
                continue
            why = mismatch(got, expected[key])
            if why:
                problems.append(f"{path} {key}: {why}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def reverse_interop(tmp_path_factory):
    """cat2rs saves expressions into a state dir and stops; the reference server starts on it.
    Yields (reference server, {path: expected values})."""
    work = tmp_path_factory.mktemp("lazy-reverse")
    state = work / "state"
    tmp = work / "tmp"
    tmp.mkdir()
    rng = np.random.default_rng(SEED + 10)
    a = rng.integers(-1000, 1000, (24, 18)).astype(np.int32)
    b = rng.normal(size=(18,))
    expected = {
        "@personal/rev/e_a1.b2nd": a + 1,
        "@shared/rev/e_chain.b2nd": (a + 1) * 2,
        "@personal/rev/e_mixed.b2nd": np.where(a < 0, a * b, np.sqrt(np.abs(a)) + 1),
        "@shared/rev/e_sin.b2nd": np.sin(a) ** 2 + b,
    }
    ours = _start(work / "cat2rs", statedir=state)
    try:
        ours.add_user(*ADMIN, superuser=True)
        oc = ours.client(ADMIN, timeout=60)
        ra = upload_array(oc, tmp, a, "@personal/rev/a.b2nd", (10, 8), (5, 4))
        rb = upload_array(oc, tmp, b, "@shared/rev/b.b2nd", (8,), (4,))
        e1 = oc.upload(ra + 1, "@personal/rev/e_a1.b2nd")
        save(oc, "e * 2", {"e": e1}, "@shared/rev/e_chain.b2nd")
        save(oc, "where(a < 0, a * b, sqrt(abs(a)) + 1)", {"a": ra, "b": rb}, "@personal/rev/e_mixed.b2nd")
        save(oc, "sin(a) ** 2 + b", {"a": ra, "b": rb}, "@shared/rev/e_sin.b2nd")
    finally:
        ours.close()
    ref = start_reference(work / "reference", state)
    try:
        yield ref, expected
    finally:
        ref.close()


@pytest.mark.skipif(cat2rs_launch.check_available(cat2rs_launch.REFERENCE) is not None,
                    reason="the reference server is not installed")
@pytest.mark.local_state  # the reference server runs on what cat2rs wrote
def test_interop_reference_serves_cat2rs_carriers(reverse_interop):
    """Carriers cat2rs wrote (operands in the same @personal dir, in @shared, and another carrier) are
    served by the reference server with NumPy's values."""
    ref, cases = reverse_interop
    rc = ref.client(ADMIN, timeout=60)
    problems = []
    for path, expected in cases.items():
        try:
            info = rc.get_info(path)
            got = rc.fetch(path)
        except httpx.HTTPStatusError as e:
            problems.append(f"{path}: {e.response.status_code} {e.response.text[:200]}")
            continue
        if tuple(info["shape"]) != expected.shape or info["dtype"] != str(expected.dtype):
            problems.append(f"{path}: info {info}")
        why = mismatch(got, expected)
        if why:
            problems.append(f"{path}: {why}")
    assert not problems, "\n".join(problems)
