"""The workloads of the side-by-side benchmark, run the same way against each server.

Every timed request goes through bench/rawhttp.py on keep-alive connections; a time runs
from sending the request to the last byte of the answer (answers are not decoded while
timed). Every answer whose values NumPy can check is checked once, by a request made
before the timed ones (which also warms the server's caches up): a wrong answer is
reported as WRONG, never as a speed.

Each workload returns {row key: value}: seconds, requests or bytes per second, or bytes
(side_by_side.ROWS says which). Side facts go under keys with a ":" suffix.
"""

import json
import os
import statistics
import time

import blosc2
import numpy as np

from compute import EXPRESSIONS, Unevaluated, WrongResult, check, short_error
from rawhttp import Connection, HttpError, request_rate, run, timed_gets
from upload_rss import Sampler, holds_payload, multipart, rss_kb

STACKS = {
    "native": "@shared/stack.b2nd",
    "bslz4": "@shared/stack-bslz4/entry/data/data.b2nd",
    "gzip": "@shared/stack-gzip/entry/data/data.b2nd",
}
REGION = 64


class Context:
    """What the workloads need of one server: where it is, the user's cookie, the data."""

    def __init__(self, server, state, frames, many, opts):
        self.server, self.url, self.state = server, server.url, state
        self.headers = {"Cookie": server.cookie()}
        self.frames, self.many, self.opts = frames, many, opts

    def gets(self, targets):
        """(seconds per GET, first Response, bytes of all bodies), on one connection."""
        return run(timed_gets(self.url, targets, self.headers))

    def get(self, target):
        """One GET, untimed: its Response."""
        return self.gets([target])[1]

    def post(self, target, body=b"", headers=None):
        async def once():
            conn = await Connection.open(self.url, self.headers)
            try:
                return await conn.request("POST", target, body, headers)
            finally:
                conn.close()

        return run(once())


def outcome(exc):
    """What a workload that failed shows instead of a figure."""
    if isinstance(exc, WrongResult):
        return f"WRONG ({exc})"
    msg = str(exc) if isinstance(exc, (HttpError, Unevaluated)) else short_error(exc)
    msg = " ".join(msg.split())
    return f"n/a ({msg if len(msg) <= 100 else msg[:97] + '...'})"


def latencies(key, times):
    return {f"{key}:median": statistics.median(times), f"{key}:p99": float(np.percentile(times, 99))}


def same(got, expected, what):
    if got.shape != expected.shape or got.dtype != expected.dtype:
        raise WrongResult(f"{what}: {got.shape} {got.dtype}, NumPy says {expected.shape} {expected.dtype}")
    if not np.array_equal(got, expected):
        bad = int(np.count_nonzero(got != expected))
        raise WrongResult(f"{what}: {bad} of {got.size} elements differ from NumPy's")


def decoded(resp):
    return blosc2.ndarray_from_cframe(resp.body)[()]


def selections(shape, samples):
    """The frames and 64x64 regions asked for, the same for every server and for the
    local reads: (frame selections, region selections), tuples of ints and slices."""
    n, h, w = shape
    rng = np.random.default_rng(2)
    frames = [(i % n,) for i in range(samples)]
    regions = []
    for i in range(samples):
        y, x = (int(v) for v in rng.integers(0, (h - REGION + 1, w - REGION + 1)))
        regions.append((i % n, slice(y, y + REGION), slice(x, x + REGION)))
    return frames, regions


def slice_param(sel):
    return ",".join(str(s) if isinstance(s, int) else f"{s.start}:{s.stop}" for s in sel)


def info_rate(ctx):
    """GET /api/info of the native stack: requests per second on 1 and 16 connections."""
    target = f"/api/info/{STACKS['native']}"
    info = json.loads(ctx.get(target).body)
    if info.get("shape") != list(ctx.frames.shape) or info.get("dtype") != "uint16":
        raise WrongResult(f"info: shape {info.get('shape')}, dtype {info.get('dtype')}")
    return {f"info_c{c}": run(request_rate(ctx.url, target, c, ctx.opts.seconds, ctx.headers)) for c in (1, 16)}


def fetches(ctx, stack, kind, sels):
    """GET /api/fetch of each selection of `sels` ("frame" or "region" `kind`) of `stack`."""
    targets = [f"/api/fetch/{STACKS[stack]}?slice_={slice_param(s)}" for s in sels]
    same(decoded(ctx.get(targets[0])), ctx.frames[sels[0]], f"{kind} of {stack}")
    return latencies(f"{kind}_{stack}", ctx.gets(targets)[0])


def download(ctx, stack):
    """GET /api/download of the whole stack."""
    target = f"/api/download/{STACKS[stack]}"
    first = ctx.get(target)
    same(decoded(first), ctx.frames, f"download of {stack}")
    del first
    times, _, nbytes = ctx.gets([target] * ctx.opts.repeat)
    return {f"download_{stack}": statistics.median(times), f"download_{stack}:bytes": nbytes / ctx.opts.repeat}


def chunks(ctx, stack):
    """GET /api/chunk of every chunk (one frame each) in turn: frame bytes per second."""
    targets = [f"/api/chunk/{STACKS[stack]}?nchunk={i}" for i in range(len(ctx.frames))]
    got = np.frombuffer(blosc2.decompress2(ctx.get(targets[0]).body), dtype=ctx.frames.dtype)
    same(got.reshape(ctx.frames.shape[1:]), ctx.frames[0], f"chunk 0 of {stack}")
    totals = []
    for _ in range(ctx.opts.repeat):
        times, _, nbytes = ctx.gets(targets)
        totals.append(sum(times))
    return {f"chunk_{stack}": ctx.frames.nbytes / statistics.median(totals), f"chunk_{stack}:bytes": nbytes}


def lazy(ctx, client, expected, frame):
    """Each expression over the native stack: compute=true through the official client
    (which asks for the new dataset's info afterwards), and GET /api/fetch of one frame of
    it saved unevaluated (of the whole result when that is one frame, as for sum(axis=0))."""
    remote = client.get(STACKS["native"])
    out = {}
    for i, expr in enumerate(EXPRESSIONS):
        for key, fn in ((f"lazy{i}_store", time_store), (f"lazy{i}_frame", time_lazy_frame)):
            try:
                out[key] = fn(ctx, client, remote, expr, expected[expr], frame)
            except Exception as exc:
                out[key] = outcome(exc)
    return out


def time_store(ctx, client, remote, expr, expected, _frame):
    path = f"@personal/computed{EXPRESSIONS.index(expr)}.b2nd"
    times = []
    for rep in range(ctx.opts.repeat):
        t = time.perf_counter()
        client.upload(blosc2.lazyexpr(expr, operands={"a": remote}), path, compute=True)
        times.append(time.perf_counter() - t)
        if rep == 0:
            check(ctx.get(f"/api/download/{path}").body, expected, f"compute=true {expr}")
    return statistics.median(times)


def time_lazy_frame(ctx, client, remote, expr, expected, frame):
    path = f"@personal/lazy{EXPRESSIONS.index(expr)}.b2nd"
    client.upload(blosc2.lazyexpr(expr, operands={"a": remote}), path)
    query, want = (f"?slice_={frame}", expected[frame]) if expected.ndim == 3 else ("", expected)
    target = f"/api/fetch/{path}{query}"
    check(ctx.get(target).body, want, f"fetch of {expr}")
    # --repeat, not --samples, times: the reference computes a whole reduction for each fetch.
    return statistics.median(ctx.gets([target] * ctx.opts.repeat)[0])


def upload(ctx):
    """POST /api/upload of opts.upload_bytes into an .h5 (stored verbatim): seconds, and the
    largest resident set of the server's processes while it receives them."""
    size = ctx.opts.upload_bytes
    ctype, length, blocks = multipart(size)
    idle = rss_kb(ctx.server.proc.pid)
    sampler = Sampler(ctx.server.proc.pid)
    sampler.start()
    try:
        t = time.perf_counter()
        ctx.post("/api/upload/@shared/big.h5", blocks, {"Content-Type": ctype, "Content-Length": str(length)})
        seconds = time.perf_counter() - t
    finally:
        sampler.stop = True
        sampler.join()
    stored = ctx.state / "shared" / "big.h5"
    if not holds_payload(stored, size):
        raise WrongResult("upload: the stored file differs from the bytes sent")
    os.remove(stored)
    return {"upload": seconds, "upload_rss": sampler.peak * 1024.0, "upload_rss_growth": (sampler.peak - idle) * 1024.0}


def unfold(ctx):
    """POST /api/unfold of the file with many datasets (each repetition rewrites the proxies)."""
    times = []
    for _ in range(ctx.opts.repeat):
        t = time.perf_counter()
        ctx.post("/api/unfold/@shared/many.h5")
        times.append(time.perf_counter() - t)
    proxies = [p for p in json.loads(ctx.get("/api/list/@shared/many").body) if p.endswith(".b2nd")]
    if len(proxies) != len(ctx.many):
        raise WrongResult(f"unfold: {len(proxies)} proxies for {len(ctx.many)} datasets")
    name, data = next(iter(ctx.many.items()))
    same(decoded(ctx.get(f"/api/fetch/@shared/many/{name}.b2nd")), data, f"proxy of {name}")
    return {"unfold": statistics.median(times)}
