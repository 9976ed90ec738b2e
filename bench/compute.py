#!/usr/bin/env python3
"""Benchmark: server-side lazy expressions over a ~100 M element uint16 array,
on cat2rs and (optionally) the reference server, next to the codec roofline.

The operand is a stack of 100 detector-like 1000x1000 uint16 frames (Poisson
noise with a few bright spots, as in bench/hdf5_proxy.py), stored as .b2nd
(ZSTD 1 + shuffle, one frame per chunk) and uploaded to each server through the
official client. For each expression

    a*2+1
    where(a < 10, a * 32000, a)
    sum(a, axis=0)

the client saves `blosc2.lazyexpr(expr, operands={"a": remote_array})` on the
server (compute=False), and then these are timed:

  download  GET /api/download/<lazy dataset>: the server computes the whole
            result and sends it compressed (the body is read, not decoded);
  fetch     GET /api/fetch/<lazy dataset> without a slice (the whole result
            the way the client's `arr[:]` asks for it);
  store     the same expression uploaded with compute=True through the
            client (which asks for the new dataset's info afterwards): the
            server evaluates it and stores the result.

The **codec roofline** is measured in the same run with python-blosc2 (i.e.
C-Blosc2 alone, nthreads = os.cpu_count()): decompress every chunk of the
operand, then compress a result of the same size and dtype as the expression's
(NumPy's answer, computed beforehand, so its compressibility is realistic) with
the cparams cat2rs uses for computed answers (`result_cparams` in
crates/cat2-core/src/fetch.rs: LZ4 clevel 5 + bitshuffle, split always), one
result chunk at a time. For `sum(a, axis=0)` the result is small, so its roofline is about the
decompression alone. Target: cat2rs at or below the roofline (ratio <= 1).

GB/s is always operand bytes (uncompressed, 200 MB) / seconds; times are the
median of --repeat runs, measured by the client (the transfer included). "in
server" is what the server says it worked on the request in its
`Server-Timing` header (cat2rs sends one; the transfer excluded): that time,
not the client's, is what compares with the codec roofline. Every answer is checked once against NumPy (a
benchmark must not report the speed of wrong answers): a wrong result prints
"WRONG" and makes the exit status 1; an expression a server cannot evaluate
prints "n/a (<error>)" and the run goes on (exit status 2 if cat2rs evaluated
nothing at all). The reference server's download of a lazy dataset sends the
stored, unevaluated carrier; that shows as "n/a (served the unevaluated lazy
carrier)", and its fetch and store are what compute there.

Usage (with the conformance venv's python, from the repo, after
`cargo build --release`):
    .venv/bin/python bench/compute.py [--bin target/release/cat2rs] [--reference]
        [--frames 100] [--size 1000] [--repeat 3]

`--smoke` runs a tiny version (shape (4, 64, 64), one repetition, cat2rs only
unless --reference is given), for CI: the harness must not rot.
"""

import argparse
import os
import pathlib
import re
import shutil
import statistics
import sys
import tempfile
import time

import blosc2
import caterva2 as cat2
import httpx
import numpy as np

from datasets import write_b2nd
from servers import PASSWORD, USER, make_frames, running

REPO = pathlib.Path(__file__).resolve().parent.parent
EXPRESSIONS = ["a*2+1", "where(a < 10, a * 32000, a)", "sum(a, axis=0)"]
WAYS = ["download", "fetch", "store"]
NTHREADS = os.cpu_count() or 1


def result_cparams(itemsize, blocksize):
    """What cat2rs compresses computed answers with (cat2-core `result_cparams`)."""
    return blosc2.CParams(codec=blosc2.Codec.LZ4, clevel=5, filters=[blosc2.Filter.BITSHUFFLE],
                          filters_meta=[0], typesize=itemsize, blocksize=blocksize,
                          splitmode=blosc2.SplitMode.ALWAYS_SPLIT, nthreads=NTHREADS)


def numpy_result(expr, a):
    return np.asarray(eval(expr, {"__builtins__": {}}, {"a": a, "where": np.where, "sum": np.sum}))


def result_geometry(operand_chunks, operand_blocks, result_shape):
    """Chunks and blocks of a result: the operand's, without the reduced axes."""
    if len(result_shape) == len(operand_chunks):
        return tuple(operand_chunks), tuple(operand_blocks)
    keep = range(len(operand_chunks) - len(result_shape), len(operand_chunks))  # axis 0 reduced
    chunks = tuple(min(operand_chunks[d], s) for d, s in zip(keep, result_shape))
    blocks = tuple(min(operand_blocks[d], c) for d, c in zip(keep, chunks))
    return chunks, blocks


def chunk_views(arr, chunks):
    """The chunks of `arr` in C order of the chunk grid, as contiguous arrays."""
    grid = [-(-s // c) for s, c in zip(arr.shape, chunks)]
    for idx in np.ndindex(*grid):
        sl = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(idx, chunks, arr.shape))
        yield np.ascontiguousarray(arr[sl])


def time_roofline(operand_path, result, chunks, blocks, repeat, operand_chunks=None):
    """Seconds C-Blosc2 needs to decompress the operand (or only its chunks numbered
    `operand_chunks`) and compress `result` (the part of the result those chunks make)."""
    arr = blosc2.open(str(operand_path), mode="r")
    schunk = arr.schunk
    schunk.dparams = blosc2.DParams(nthreads=NTHREADS)
    cparams = result_cparams(result.dtype.itemsize, int(np.prod(blocks)) * result.dtype.itemsize)
    parts = list(chunk_views(result, chunks))  # the copies (if any) are not timed
    if operand_chunks is None:
        operand_chunks = range(schunk.nchunks)
    dtimes, ctimes = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        for i in operand_chunks:
            schunk.decompress_chunk(i)
        t1 = time.perf_counter()
        for p in parts:
            blosc2.compress2(p, cparams=cparams)
        t2 = time.perf_counter()
        dtimes.append(t1 - t)
        ctimes.append(t2 - t1)
    csize = sum(len(blosc2.compress2(p, cparams=cparams)) for p in parts)
    return statistics.median(d + c for d, c in zip(dtimes, ctimes)), statistics.median(dtimes), \
        statistics.median(ctimes), csize


def size(nbytes):
    return f"{nbytes / 1e6:.1f} MB" if nbytes >= 1e5 else f"{nbytes / 1e3:.1f} kB"


def short_error(exc):
    if isinstance(exc, httpx.HTTPStatusError):
        text = exc.response.text.strip().replace("\n", " ")
        msg = f"HTTP {exc.response.status_code}: {text}"
    else:
        msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return msg if len(msg) <= 110 else msg[:107] + "..."


def server_timing(response):
    """Seconds the server says it worked on a request (its `Server-Timing` header), if it says."""
    m = re.match(r"\w+;dur=([\d.]+)", response.headers.get("server-timing", ""))
    return float(m[1]) / 1e3 if m else None


class WrongResult(Exception):
    pass


class Unevaluated(Exception):
    """The server answered with the lazy carrier (no data), not with the result."""


def check(content, expected, what):
    """Decodes a downloaded frame and compares it with NumPy's answer."""
    try:
        got = blosc2.ndarray_from_cframe(content)
    except Exception as exc:
        raise WrongResult(f"{what}: the answer is not a Blosc2 array ({short_error(exc)})") from exc
    if "b2o" in got.schunk.meta:
        raise Unevaluated(f"served the unevaluated lazy carrier ({len(content)} bytes)")
    data = got[()]
    if data.shape != expected.shape:
        raise WrongResult(f"{what}: shape {data.shape}, NumPy says {expected.shape}")
    if data.dtype != expected.dtype:
        raise WrongResult(f"{what}: dtype {data.dtype}, NumPy says {expected.dtype}")
    if not np.array_equal(data, expected):
        bad = int(np.count_nonzero(data != expected))
        raise WrongResult(f"{what}: {bad} of {data.size} elements differ from NumPy's")
    return got.chunks, got.blocks, len(content)


def run_server(name, args, tmp, operand_path, expected):
    """Times every expression and way on one server.

    Returns {(expr, way): seconds | str (n/a reason)}, the download of the
    stored operand (transport floor) and a list of verification failures.
    """
    out, failures = {}, []
    with running(name, args.bin, tmp / f"state-{name}", tmp) as server:
        url = server.url
        client = cat2.Client(url, (USER, PASSWORD), timeout=900)
        client.httpx_client.timeout = httpx.Timeout(900)
        server_said = []  # what the server says it spent, per request of the way being timed
        client.httpx_client.event_hooks["response"].append(
            lambda r: server_said.append(server_timing(r)) if "upload_lazyarr" in str(r.url) else None)
        remote = client.upload(operand_path, "@personal/a.b2nd")
        r = httpx.post(f"{url}/auth/jwt/login", data={"username": USER, "password": PASSWORD})
        r.raise_for_status()
        with httpx.Client(cookies=r.cookies, timeout=900) as http:

            def get(endpoint, path, record=True):
                t = time.perf_counter()
                r = http.get(f"{url}/api/{endpoint}/{path}")
                r.raise_for_status()
                body = r.content
                if record:
                    server_said.append(server_timing(r))
                return time.perf_counter() - t, body

            floor = statistics.median(get("download", "@personal/a.b2nd", False)[0] for _ in range(args.repeat))
            for i, expr in enumerate(EXPRESSIONS):
                lazy_path, stored_path = f"@personal/x{i}.b2nd", f"@personal/xc{i}.b2nd"
                try:
                    client.upload(blosc2.lazyexpr(expr, operands={"a": remote}), lazy_path)
                except Exception as exc:
                    out[(expr, "save")] = f"n/a (saving the lazy expression: {short_error(exc)})"
                    continue
                for way in WAYS:
                    times, server_said = [], []
                    try:
                        for rep in range(args.repeat):
                            body = None
                            if way == "store":
                                t = time.perf_counter()
                                client.upload(blosc2.lazyexpr(expr, operands={"a": remote}), stored_path,
                                              compute=True)
                                times.append(time.perf_counter() - t)
                                if rep == 0:
                                    _, body = get("download", stored_path, record=False)
                                    geom = check(body, expected[expr], f"{name} {way} {expr}")
                            else:
                                dt, body = get(way, lazy_path)
                                times.append(dt)
                                if rep == 0:
                                    geom = check(body, expected[expr], f"{name} {way} {expr}")
                        out[(expr, way)] = statistics.median(times)
                        if server_said and None not in server_said:
                            out[(expr, way, "server")] = statistics.median(server_said)
                        out[(expr, way, "geometry")] = geom
                    except WrongResult as exc:
                        failures.append(str(exc))
                        out[(expr, way)] = f"WRONG ({exc})"
                    except Unevaluated as exc:
                        out[(expr, way)] = f"n/a ({exc})"
                    except Exception as exc:
                        out[(expr, way)] = f"n/a ({short_error(exc)})"
    return out, floor, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(REPO / "target/release/cat2rs"))
    ap.add_argument("--reference", action="store_true", help="also time the reference server")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny data, one repetition (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.frames, args.size, args.repeat = 4, 64, 1

    t_start = time.perf_counter()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="cat2rs-bench-compute-"))
    try:
        frames = make_frames(args.frames, args.size)
        operand_path = tmp / "stack.b2nd"
        chunks, blocks, cbytes = write_b2nd(operand_path, frames)
        nbytes = frames.nbytes
        print(f"operand: {frames.shape} {frames.dtype}, {size(nbytes)} "
              f"({size(cbytes)} stored: ZSTD 1 + shuffle, chunks {chunks}, blocks {blocks}); "
              f"{NTHREADS} CPUs")
        print("roofline: C-Blosc2 decompresses every operand chunk and compresses NumPy's result with "
              f"LZ4 5 + bitshuffle (nthreads={NTHREADS})")
        print(f"GB/s = {size(nbytes)} of operand / seconds; medians of {args.repeat}")
        print()

        expected, roof = {}, {}
        for expr in EXPRESSIONS:
            expected[expr] = numpy_result(expr, frames)
            rchunks, rblocks = result_geometry(chunks, blocks, expected[expr].shape)
            roof[expr] = time_roofline(operand_path, expected[expr], rchunks, rblocks, args.repeat)
            total, dec, comp, csize = roof[expr]
            res = expected[expr]
            print(f"roofline {expr:28s}: {total:7.3f} s = {dec:.3f} decompress + {comp:.3f} compress "
                  f"(result {res.shape} {res.dtype}, {size(res.nbytes)} -> {size(csize)}, "
                  f"chunks {rchunks}, blocks {rblocks})")
        print()

        servers = ["cat2rs"] + (["reference"] if args.reference else [])
        results, floors, failures = {}, {}, []
        for name in servers:
            out, floors[name], fails = run_server(name, args, tmp, operand_path, expected)
            results[name] = out
            failures += fails
            print(f"{name}: GET /api/download of the stored operand ({size(cbytes)}, no compute): "
                  f"{floors[name]:.3f} s")
        print()

        def fmt(v):
            return f"{v:8.3f} s {nbytes / v / 1e9:6.2f} GB/s" if isinstance(v, float) else v

        width = max(len(e) for e in EXPRESSIONS)
        print(f"{'expression':{width}s}  {'server':9s} {'way':8s} {'seconds':>10s} {'GB/s':>11s}  "
              f"{'/roofline':>9s}  {'ref/cat2rs':>10s}  {'in server':>9s} {'/roofline':>9s}")
        for expr in EXPRESSIONS:
            total = roof[expr][0]
            print(f"{expr:{width}s}  {'C-Blosc2':9s} {'roofline':8s} {fmt(total)}  {1.0:9.2f}")
            for name in servers:
                if (expr, "save") in results[name]:
                    print(f"{'':{width}s}  {name:9s} {'all':8s} {results[name][(expr, 'save')]}")
                    continue
                for way in WAYS:
                    v = results[name][(expr, way)]
                    line = f"{'':{width}s}  {name:9s} {way:8s} "
                    if isinstance(v, float):
                        line += f"{fmt(v)}  {v / total:9.2f}"
                        c = results["cat2rs"].get((expr, way))
                        if name == "reference" and isinstance(c, float):
                            line += f"  {v / c:10.1f}"
                        inside = results[name].get((expr, way, "server"))
                        if inside is not None:
                            line += f"  {'':10s}  {inside:7.3f} s {inside / total:9.2f}"
                    else:
                        line += v
                    print(line)
        geoms = {(n, e, w): results[n][(e, w, "geometry")] for n in servers for e in EXPRESSIONS
                 for w in WAYS if (e, w, "geometry") in results[n]}
        if geoms:
            print()
            print("answers (verified against NumPy): chunks, blocks, compressed size")
            for (n, e, w), (c, b, nb) in geoms.items():
                print(f"  {n:9s} {w:8s} {e:{width}s}: chunks {c}, blocks {b}, {size(nb)}")
        print(f"\ntotal time: {time.perf_counter() - t_start:.0f} s")

        if failures:
            print("\nWRONG RESULTS:", *failures, sep="\n  ", file=sys.stderr)
            return 1
        if not any(isinstance(results["cat2rs"].get((e, w)), float) for e in EXPRESSIONS for w in WAYS):
            print("\ncat2rs evaluated nothing: the harness is broken", file=sys.stderr)
            return 2
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
