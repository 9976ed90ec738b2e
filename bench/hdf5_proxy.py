#!/usr/bin/env python3
"""Benchmark: one frame of a detector stack fetched through an unfolded HDF5
proxy, against the same data stored as a native .b2nd, on cat2rs and
(optionally) the reference server; and the time h5py + hdf5plugin need to read
that frame from the local file.

The stack is uint16 frames with Poisson noise and a few bright spots, stored
one frame per chunk: as .b2nd (ZSTD 1 + shuffle), as HDF5 with bitshuffle/LZ4
(what Eiger detectors write) and as HDF5 with gzip. Each server gets its own
state dir, a user, and unfolds the HDF5 files itself through the API.

Usage (with the conformance venv's python, after `cargo build --release`):
    .venv/bin/python bench/hdf5_proxy.py [--bin target/release/cat2rs] [--reference]
        [--frames 20] [--size 2048] [--repeat 3]

Prints per server and dataset: median ms of the server's answer to
`/api/fetch?slice_=i` (loopback, not decoded), the same frame fetched and
decoded by the official client, and the ratios proxy/native and
reference/cat2rs. `--smoke` runs a tiny version (for CI: the harness must not rot).
"""

import argparse
import pathlib
import shutil
import statistics
import tempfile
import time

import blosc2
import caterva2 as cat2
import h5py
import httpx
import numpy as np

from datasets import H5_KINDS, write_b2nd, write_h5
from servers import PASSWORD, USER, make_frames, running

REPO = pathlib.Path(__file__).resolve().parent.parent


def write_inputs(dirpath, frames):
    write_b2nd(dirpath / "stack.b2nd", frames)
    for kind in H5_KINDS:
        write_h5(dirpath / f"stack-{kind}.h5", frames, kind)


def time_answers(url, cookie, path, nframes, repeat):
    times = []
    with httpx.Client(cookies=cookie, timeout=120) as http:
        for _ in range(repeat):
            for i in range(nframes):
                t = time.perf_counter()
                r = http.get(f"{url}/api/fetch/{path}", params={"slice_": str(i)})
                r.raise_for_status()
                times.append(time.perf_counter() - t)
    return statistics.median(times), r.content


def time_client(client, path, nframes, repeat):
    """End to end: the official client fetches and decodes the frame."""
    arr = client.get(path)
    times = []
    for _ in range(repeat):
        for i in range(nframes):
            t = time.perf_counter()
            arr[i]
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_h5py(path, nframes, repeat):
    times = []
    with h5py.File(path, "r") as f:
        ds = f["entry/data/data"]
        for _ in range(repeat):
            for i in range(nframes):
                t = time.perf_counter()
                ds[i]
                times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target/release/cat2rs"))
    ap.add_argument("--reference", action="store_true", help="also time the reference server")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny data, one repetition (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.frames, args.size, args.repeat = 3, 64, 1

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="cat2rs-bench-h5-"))
    try:
        inputs = tmp / "inputs"
        inputs.mkdir()
        frames = make_frames(args.frames, args.size)
        write_inputs(inputs, frames)
        nbytes = frames[0].nbytes
        print(f"stack: {args.frames} frames of {args.size}x{args.size} uint16 ({nbytes / 1e6:.1f} MB each)")
        local = {k: time_h5py(inputs / f"stack-{k}.h5", args.frames, args.repeat) for k in ("bslz4", "gzip")}
        for k, t in local.items():
            print(f"h5py + hdf5plugin, local file, {k:6s}: {t * 1e3:7.2f} ms per frame")

        servers = ["cat2rs"] + (["reference"] if args.reference else [])
        results = {}
        for name in servers:
            state = tmp / f"state-{name}"
            (state / "shared").mkdir(parents=True)
            for f in inputs.iterdir():
                shutil.copy(f, state / "shared" / f.name)
            with running(name, args.bin, state, tmp) as server:
                url = server.url
                client = cat2.Client(url, (USER, PASSWORD))
                for k in ("bslz4", "gzip"):
                    client.unfold(f"@shared/stack-{k}.h5")
                r = httpx.post(f"{url}/auth/jwt/login", data={"username": USER, "password": PASSWORD})
                cookie = r.cookies
                paths = {
                    "native .b2nd": "@shared/stack.b2nd",
                    "proxy bitshuffle/LZ4": "@shared/stack-bslz4/entry/data/data.b2nd",
                    "proxy gzip": "@shared/stack-gzip/entry/data/data.b2nd",
                }
                for label, path in paths.items():
                    t, content = time_answers(url, cookie, path, args.frames, args.repeat)
                    got = blosc2.ndarray_from_cframe(content)[()]
                    assert np.array_equal(got, frames[args.frames - 1]), f"{name} {label}: wrong data"
                    results[(name, label)] = t
                    tc = time_client(client, path, args.frames, args.repeat)
                    print(f"{name:10s} {label:22s}: {t * 1e3:7.2f} ms per frame ({nbytes / t / 1e6:6.0f} MB/s); "
                          f"through the official client {tc * 1e3:7.2f} ms")

        print()
        for name in servers:
            native = results[(name, "native .b2nd")]
            for label in ("proxy bitshuffle/LZ4", "proxy gzip"):
                print(f"{name:10s} {label:22s} / native: {results[(name, label)] / native:5.2f}x")
            print(f"{name:10s} proxy bitshuffle/LZ4 / local h5py read: "
                  f"{results[(name, 'proxy bitshuffle/LZ4')] / local['bslz4']:5.2f}x")
        if args.reference:
            for label in ("native .b2nd", "proxy bitshuffle/LZ4", "proxy gzip"):
                print(f"reference/cat2rs {label:22s}: "
                      f"{results[('reference', label)] / results[('cat2rs', label)]:5.1f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
