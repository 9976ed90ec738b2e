"""The ceilings of the side-by-side benchmark, measured in the same run as the servers:
what no server can beat on this machine for each workload, so that a figure can be read as
"this far from the ideal" and not only "this much faster than the reference".

* memory copy bandwidth (NumPy, one thread);
* loopback HTTP: bench/rawhttp.py against bench/loopback.py, a server answering from
  memory (small answers per second, bulk bytes per second each way);
* local reads of the same frame and region: python-blosc2 from the .b2nd, h5py +
  hdf5plugin from the HDF5 files (what a remote read through a proxy aims at);
* the codec roofline of each lazy expression (bench/compute.py's time_roofline);
* an h5py walk over the metadata of the file that is unfolded.
"""

import pathlib
import statistics
import sys
import time

import blosc2
import h5py
import hdf5plugin  # noqa: F401  (registers the HDF5 filters h5py needs)
import numpy as np

from compute import result_geometry, time_roofline
from datasets import STACK_DSET
from rawhttp import Connection, request_rate, run, timed_gets
from servers import free_port, start
from upload_rss import multipart

LOOPBACK = str(pathlib.Path(__file__).with_name("loopback.py"))


def memcpy_bandwidth(nbytes, repeat):
    """Bytes per second NumPy copies from one buffer into another (best of `repeat`)."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeat + 1))
    return nbytes / best


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def loopback(info_bytes, bulk_bytes, upload_bytes, seconds, repeat):
    """Requests per second (1 and 16 connections) for answers of `info_bytes`, and bytes
    per second of a GET of `bulk_bytes` and of a POST of `upload_bytes`, all through
    bench/rawhttp.py against the trivial server."""
    port = free_port()
    proc = start([sys.executable, LOOPBACK, str(port)], port)
    url = f"http://127.0.0.1:{port}"
    try:
        out = {f"rate_c{c}": run(request_rate(url, f"/small?n={info_bytes}", c, seconds)) for c in (1, 16)}
        times, _, _ = run(timed_gets(url, [f"/bulk?n={bulk_bytes}"] * repeat))
        out["get_bps"] = bulk_bytes / statistics.median(times)

        async def post():
            conn = await Connection.open(url)
            ctype, length, blocks = multipart(upload_bytes)
            t = time.perf_counter()
            await conn.request("POST", "/upload", blocks, {"Content-Type": ctype, "Content-Length": str(length)})
            conn.close()
            return time.perf_counter() - t

        out["post_bps"] = upload_bytes / statistics.median(run(post()) for _ in range(repeat))
        return out
    finally:
        proc.terminate()
        proc.wait()


def local_reads(paths, selections):
    """Seconds per read of each selection (tuples of slices), locally: python-blosc2 for
    the .b2nd at paths["native"], h5py + hdf5plugin for the HDF5 files at the other keys,
    after one untimed read. Returns {key: [seconds, ...]}."""
    out = {}
    for key, path in paths.items():
        if key == "native":
            out[key] = _reads(blosc2.open(str(path), mode="r"), selections)
        else:
            with h5py.File(path, "r") as f:
                out[key] = _reads(f[STACK_DSET], selections)
    return out


def _reads(arr, selections):
    arr[selections[0]]
    return [_timed(lambda: arr[sel]) for sel in selections]


def rooflines(operand_path, expected, frame, repeat):
    """Codec roofline of each expression, {expr: (whole result s, one frame s)}: C-Blosc2
    decompressing the operand and compressing NumPy's result. One frame of a 3-D result
    is operand chunk `frame` in, result frame `frame` out; a 2-D result (a reduction over
    the frames) is one frame already, and needs every operand chunk."""
    arr = blosc2.open(str(operand_path), mode="r")
    chunks, blocks = arr.chunks, arr.blocks
    del arr
    out = {}
    for expr, res in expected.items():
        rchunks, rblocks = result_geometry(chunks, blocks, res.shape)
        whole = time_roofline(operand_path, res, rchunks, rblocks, repeat)[0]
        if res.ndim == len(chunks):
            one = time_roofline(operand_path, res[frame:frame + 1], rchunks, rblocks, repeat,
                                operand_chunks=[frame])[0]
        else:
            one = whole
        out[expr] = whole, one
    return out


def h5_metadata_walk(path, repeat):
    """Seconds h5py needs to visit every group and dataset of a file and read what unfold
    needs of them: attributes, shape, dtype, chunks and filters (median of `repeat`)."""

    def walk():
        with h5py.File(path, "r") as f:
            def visit(_name, obj):
                dict(obj.attrs)
                if isinstance(obj, h5py.Dataset):
                    obj.shape, obj.dtype, obj.chunks, obj.compression
            dict(f.attrs)
            f.visititems(visit)

    return statistics.median(_timed(walk) for _ in range(repeat))
