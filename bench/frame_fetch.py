#!/usr/bin/env python3
"""Benchmark: fetch one 2048x2048 uint16 frame of a stack through the official
client, against cat2rs and (optionally) the reference server, and compare with
the cost of decompressing the chunks that frame touches locally.

Usage (with the conformance venv's python):
    .venv/bin/python bench/frame_fetch.py [--bin target/release/cat2rs] [--reference] [--frames 20]

Prints per server: median ms per frame fetch, MB/s, and the ratio to local
decompression (1.0 = as fast as decompressing the touched chunks here).
"""

import argparse
import pathlib
import shutil
import statistics
import tempfile
import time

import blosc2
import caterva2 as cat2
import httpx
import numpy as np

from servers import command, free_port, start

REPO = pathlib.Path(__file__).resolve().parent.parent


def make_stack(path, nframes, h=2048, w=2048):
    rng = np.random.default_rng(0)
    # Detector-like counts: mostly small values, some structure.
    base = (np.hypot(*np.meshgrid(np.arange(w) - w / 2, np.arange(h) - h / 2)) / 8).astype(np.uint16)
    arr = blosc2.empty((nframes, h, w), dtype=np.uint16, chunks=(1, h, w), blocks=(1, 128, w),
                       urlpath=str(path), mode="w",
                       cparams=blosc2.CParams(codec=blosc2.Codec.ZSTD, clevel=1, filters=[blosc2.Filter.SHUFFLE]))
    for i in range(nframes):
        arr[i] = base + rng.poisson(3, size=(h, w)).astype(np.uint16)
    return arr


def time_raw(url, path, nframes, repeat):
    """Server cost: the whole answer over loopback, not decoded."""
    times = []
    with httpx.Client() as http:
        for _ in range(repeat):
            for i in range(nframes):
                t = time.perf_counter()
                r = http.get(f"{url}/api/fetch/{path}", params={"slice_": str(i)})
                r.raise_for_status()
                times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_fetches(url, path, nframes, repeat):
    client = cat2.Client(url)
    arr = client.get(path)
    times = []
    for r in range(repeat):
        for i in range(nframes):
            t = time.perf_counter()
            frame = arr[i]
            times.append(time.perf_counter() - t)
            assert frame.shape == (2048, 2048)
    return statistics.median(times), frame


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target/release/cat2rs"))
    ap.add_argument("--reference", action="store_true", help="also time the reference server")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="cat2rs-bench-"))
    try:
        state = tmp / "state"
        (state / "public").mkdir(parents=True)
        conf = tmp / "server.toml"
        conf.write_text("[server]\nlogin = false\n")
        arr = make_stack(state / "public" / "stack.b2nd", args.frames)
        nbytes = 2048 * 2048 * 2

        # Local baseline: decompress the chunk holding each frame.
        local = []
        for _ in range(args.repeat):
            for i in range(args.frames):
                t = time.perf_counter()
                arr.schunk.decompress_chunk(i)
                local.append(time.perf_counter() - t)
        base = statistics.median(local)
        print(f"local decompress of one frame chunk: {base * 1e3:.2f} ms ({nbytes / base / 1e6:.0f} MB/s)")

        servers = ["cat2rs"] + (["reference"] if args.reference else [])
        results = {}
        for name in servers:
            port = free_port()
            proc = start(command(name, args.bin) + [f"--conf={conf}", f"--statedir={state}",
                                                    f"--listen=127.0.0.1:{port}"], port)
            try:
                url = f"http://127.0.0.1:{port}"
                raw = time_raw(url, "@public/stack.b2nd", args.frames, args.repeat)
                t, frame = time_fetches(url, "@public/stack.b2nd", args.frames, args.repeat)
                assert np.array_equal(frame, arr[args.frames - 1])
                results[name] = (raw, t)
                print(f"{name:10s} server answer: {raw * 1e3:7.2f} ms ({raw / base:5.2f}x local decompression);  "
                      f"client frame: {t * 1e3:7.2f} ms ({nbytes / t / 1e6:6.0f} MB/s)")
            finally:
                proc.terminate()
                proc.wait()
        if "reference" in results:
            (r_raw, r_t), (c_raw, c_t) = results["reference"], results["cat2rs"]
            print(f"ratio reference/cat2rs: server answer {r_raw / c_raw:.1f}x, client frame {r_t / c_t:.1f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
