#!/usr/bin/env python3
"""The side-by-side benchmark: the reference Caterva2 server and cat2rs on the same
machine, the same data and the same client, in one run, reported as ratios and against
the ceilings of the machine measured in the same run. Run it through `bench/run`, which
makes the Python environment and the release build first.

The data is made once: a uint16 stack of detector-like frames (Poisson noise and bright
Bragg-like spots) as a native .b2nd (ZSTD 1 + shuffle, one frame per chunk) and as HDF5
files with one frame per chunk (bitshuffle/LZ4, and gzip + shuffle), plus an HDF5 file of
many small datasets; each server gets its own copy in its own state dir, with login on
and one user, and unfolds the HDF5 stacks itself. bench/workloads.py says what is timed
and how, bench/ceilings.py what the ceilings are. The table and the machine go to
bench/RESULTS.md (--results; a smoke run writes nowhere unless told).

Exit status: 1 if cat2rs answered anything wrong, 2 if it answered nothing at all.
"""

import argparse
import os
import pathlib
import shlex
import shutil
import sys
import tempfile
import time

import caterva2 as cat2
import httpx

import ceilings
import report
import workloads as wl
from compute import EXPRESSIONS, numpy_result
from datasets import H5_KINDS, write_b2nd, write_h5, write_many
from rawhttp import TIMEOUT
from report import Row
from servers import PASSWORD, USER, make_frames, running

REPO = pathlib.Path(__file__).resolve().parent.parent
SERVERS = ("reference", "cat2rs")
NAMES = {"native": "native .b2nd", "bslz4": "HDF5 proxy, bitshuffle/LZ4", "gzip": "HDF5 proxy, gzip"}
LOCAL = {"native": "python-blosc2 local read", "bslz4": "h5py local read", "gzip": "h5py local read"}
INFO_BYTES = 700  # about the size of an /api/info answer for an array: the loopback ceiling's answers


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(REPO / "target/release/cat2rs"), help="the cat2rs binary")
    ap.add_argument("--smoke", action="store_true", help="tiny data, one repetition (seconds, for CI)")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", type=int, default=2048, help="frames are SIZE x SIZE")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions of whole-stack workloads")
    ap.add_argument("--samples", type=int, default=100, help="requests per latency workload")
    ap.add_argument("--seconds", type=float, default=5, help="duration of each request-rate run")
    ap.add_argument("--upload-mb", type=int, default=1024)
    ap.add_argument("--datasets", type=int, default=300, help="datasets in the file unfolded")
    ap.add_argument("--results", type=pathlib.Path,
                    help="where the table goes (default: bench/RESULTS.md, except with --smoke: nowhere)")
    ap.add_argument("--tmpdir", help="where the data and state dirs go (several GB in full mode)")
    args = ap.parse_args()
    if args.smoke:
        args.frames, args.size, args.repeat, args.samples = 4, 128, 1, 3
        args.seconds, args.upload_mb, args.datasets = 0.3, 8, 24
    elif args.results is None:
        args.results = REPO / "bench/RESULTS.md"
    args.upload_bytes = args.upload_mb << 20
    args.bin = os.path.abspath(args.bin)
    return args


def make_data(dirpath, args):
    """Writes the files both servers serve; returns (frames, {dataset: data} of many.h5)."""
    frames = make_frames(args.frames, args.size)
    write_b2nd(dirpath / "stack.b2nd", frames)
    for kind in H5_KINDS:
        write_h5(dirpath / f"stack-{kind}.h5", frames, kind)
    many = write_many(dirpath / "many.h5", args.datasets)
    return frames, many


def rows(args):
    h, w = args.size, args.size
    out = [Row(f"info_c{c}", f"`/api/info` requests, {c} connection{'s' * (c > 1)}", "rate",
               "trivial server, same client") for c in (1, 16)]
    for kind, what in (("frame", f"one {h}×{w} frame"), ("region", f"{wl.REGION}×{wl.REGION} region")):
        for stack in wl.STACKS:
            for stat in ("median", "p99"):
                out.append(Row(f"{kind}_{stack}:{stat}", f"{what}, {NAMES[stack]}, {stat}", "time", LOCAL[stack]))
    for stack in ("native", "bslz4"):
        out.append(Row(f"download_{stack}", f"whole stack download, {NAMES[stack]}", "time",
                       "loopback transfer of cat2rs's answer"))
    for stack in ("native", "bslz4"):
        out.append(Row(f"chunk_{stack}", f"`/api/chunk` × {args.frames} in turn, {NAMES[stack]} (frame bytes/s)",
                       "bps", "loopback transfer of cat2rs's chunks"))
    for i, expr in enumerate(EXPRESSIONS):
        out.append(Row(f"lazy{i}_store", f"`{expr}` compute=true", "time", "codec roofline"))
        one = "whole result: one frame" if "axis=0" in expr else "one frame"
        out.append(Row(f"lazy{i}_frame", f"`{expr}` fetch ({one})", "time", "codec roofline"))
    out += [Row("upload", f"upload of {args.upload_mb} MB (.h5, stored verbatim)", "time", "loopback transfer"),
            Row("upload_rss", "server's peak RSS during that upload", "bytes"),
            Row("upload_rss_growth", "the same, above the RSS just before the upload", "bytes"),
            Row("unfold", f"unfold of an HDF5 file with {args.datasets} datasets", "time", "h5py metadata walk")]
    return out


def measure_ceilings(data, frames, expected, sels, args):
    print("ceilings ...", flush=True)
    bulk = int(data.joinpath("stack.b2nd").stat().st_size)
    paths = {"native": data / "stack.b2nd", "bslz4": data / "stack-bslz4.h5", "gzip": data / "stack-gzip.h5"}
    return {
        "memcpy": ceilings.memcpy_bandwidth(min(256 << 20, max(16 << 20, frames.nbytes)), args.repeat),
        "loopback": ceilings.loopback(INFO_BYTES, bulk, args.upload_bytes, args.seconds, args.repeat),
        "local": {kind: ceilings.local_reads(paths, s) for kind, s in zip(("frame", "region"), sels)},
        "roofline": ceilings.rooflines(data / "stack.b2nd", expected, len(frames) // 2, args.repeat),
        "walk": ceilings.h5_metadata_walk(data / "many.h5", args.repeat),
    }


def ceiling_values(c, ours, frames, args):
    """The ceiling of each row, in the row's unit; transfers are sized by cat2rs's answers."""
    lb = c["loopback"]
    out = {f"info_c{n}": lb[f"rate_c{n}"] for n in (1, 16)}
    for kind, per_stack in c["local"].items():
        for stack, times in per_stack.items():
            out.update({k.replace("local", f"{kind}_{stack}"): v for k, v in wl.latencies("local", times).items()})
    for stack in ("native", "bslz4"):
        if f"download_{stack}:bytes" in ours:
            out[f"download_{stack}"] = ours[f"download_{stack}:bytes"] / lb["get_bps"]
        if f"chunk_{stack}:bytes" in ours:
            out[f"chunk_{stack}"] = frames.nbytes / (ours[f"chunk_{stack}:bytes"] / lb["get_bps"])
    for i, expr in enumerate(EXPRESSIONS):
        out[f"lazy{i}_store"], out[f"lazy{i}_frame"] = c["roofline"][expr]
    out["upload"] = args.upload_bytes / lb["post_bps"]
    out["unfold"] = c["walk"]
    return out


def plan(client, expected, frames, sels):
    """The workloads in the order they run: (row keys, function, its arguments after the context)."""
    # The upload comes first, so that its memory figures are not those of earlier workloads.
    steps = [(["upload", "upload_rss", "upload_rss_growth"], wl.upload, ()),
             (["info_c1", "info_c16"], wl.info_rate, ())]
    for kind, s in zip(("frame", "region"), sels):
        steps += [([f"{kind}_{st}:median", f"{kind}_{st}:p99"], wl.fetches, (st, kind, s)) for st in wl.STACKS]
    steps += [([f"download_{st}"], wl.download, (st,)) for st in ("native", "bslz4")]
    steps += [([f"chunk_{st}"], wl.chunks, (st,)) for st in ("native", "bslz4")]
    lazy_keys = [f"lazy{i}_{way}" for i in range(len(EXPRESSIONS)) for way in ("store", "frame")]
    return steps + [(lazy_keys, wl.lazy, (client, expected, len(frames) // 2)), (["unfold"], wl.unfold, ())]


def run_server(name, tmp, data, frames, many, expected, sels, args):
    """Every workload against server `name` on its own copy of the data."""
    kinds = {row.key: row.kind for row in rows(args)}
    state = tmp / f"state-{name}"
    shutil.copytree(data, state / "shared")
    (tmp / name).mkdir()
    out = {}
    with running(name, args.bin, state, tmp / name) as server:
        ctx = wl.Context(server, state, frames, many, args)
        client = cat2.Client(server.url, (USER, PASSWORD), timeout=TIMEOUT)
        client.httpx_client.timeout = httpx.Timeout(TIMEOUT)
        for kind in H5_KINDS:
            try:
                client.unfold(f"@shared/stack-{kind}.h5")
            except Exception as exc:  # its proxies' workloads then say what is missing
                print(f"  {name}: unfolding stack-{kind}.h5: {wl.outcome(exc)}")
        for keys, fn, fargs in plan(client, expected, frames, sels):
            t = time.perf_counter()
            try:
                got = fn(ctx, *fargs)
            except Exception as exc:
                got = dict.fromkeys(keys, wl.outcome(exc))
            out.update(got)
            shown = ", ".join(f"{k} {report.fmt(v, kinds[k])}" for k, v in got.items() if k in kinds)
            print(f"  {name}: {shown} [{time.perf_counter() - t:.1f} s]", flush=True)
    return out


def notes(c, args):
    lb = c["loopback"]
    lines = ["## How it is measured", "",
             "* Requests go through `bench/rawhttp.py` (an asyncio HTTP/1.1 client) on keep-alive connections, "
             "logged in as the one user; a time runs from the request to the last byte of the answer, which is "
             "not decoded while timed. Every answer NumPy can check was checked once (WRONG otherwise).",
             "* `reference / cat2rs` is how many times better cat2rs is (time ratio; for rates, rate ratio); "
             "`cat2rs / ceiling` is how many times the ceiling's cost cat2rs takes (1.00× = at the ceiling).",
             f"* Latencies: {args.samples} requests (frames in turn; regions at random places, the same for "
             f"both servers and the local reads); whole-stack workloads and expressions: median of "
             f"{args.repeat}.",
             "* compute=true runs through the official client (its `upload` of a lazy expression, then the info "
             "request it makes); the fetch is of the expression saved unevaluated (compute=false).",
             "* HDF5 proxies are made by each server's own `/api/unfold` of the HDF5 stacks.", "",
             "## Ceilings measured in the same run", "",
             f"* memory copy (NumPy, one thread): {report.fmt(c['memcpy'], 'bps')}",
             f"* loopback, same client against a trivial in-memory server: {lb['rate_c1']:,.0f} requests/s on 1 "
             f"connection, {lb['rate_c16']:,.0f}/s on 16 ({INFO_BYTES}-byte answers); GET "
             f"{report.fmt(lb['get_bps'], 'bps')}, POST {report.fmt(lb['post_bps'], 'bps')}",
             f"* h5py metadata walk of the unfolded file: {report.fmt(c['walk'], 'time')}"]
    for expr, (whole, one) in c["roofline"].items():
        lines.append(f"* codec roofline (C-Blosc2: decompress the operand, compress NumPy's result) of `{expr}`: "
                     f"{report.fmt(whole, 'time')} whole, {report.fmt(one, 'time')} for one frame")
    return lines


def main():
    args = parse_args()
    machine, started, t0 = report.machine(), report.now(), time.perf_counter()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="cat2rs-side-by-side-", dir=args.tmpdir))
    try:
        data = tmp / "data"
        data.mkdir()
        frames, many = make_data(data, args)
        desc = (f"{args.frames} frames of {args.size}×{args.size} uint16 ({frames.nbytes / 1e6:.1f} MB), "
                f"{args.datasets} datasets in the unfolded file")
        print(f"data: {desc}", flush=True)
        expected = {expr: numpy_result(expr, frames) for expr in EXPRESSIONS}
        sels = wl.selections(frames.shape, args.samples)
        c = measure_ceilings(data, frames, expected, sels, args)
        results = {}
        for name in SERVERS:
            print(f"{name} ...", flush=True)
            results[name] = run_server(name, tmp, data, frames, many, expected, sels, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lines = report.table(rows(args), results, ceiling_values(c, results["cat2rs"], frames, args))
    print("\n" + "\n".join(lines))
    if args.results is not None:
        mode = "SMOKE RUN (tiny data, one repetition: these figures say nothing about speed)" if args.smoke \
            else "Full run"
        preamble = [f"**{mode}**, {started}, {time.perf_counter() - t0:.0f} s, by "
                    f"`{shlex.join(['bench/run'] + sys.argv[1:])}`.", "", f"Machine: {machine}.", "",
                    f"Software: {report.versions(REPO, args.bin)}.", "", f"Data: {desc}."]
        report.write_results(args.results, "cat2rs against the reference Caterva2 server, side by side",
                             preamble, lines, notes(c, args))
        print(f"\nwritten to {args.results}")
    ours = results["cat2rs"].values()
    if any(isinstance(v, str) and v.startswith("WRONG") for v in ours):
        return 1
    return 0 if any(isinstance(v, float) for v in ours) else 2


if __name__ == "__main__":
    sys.exit(main())
