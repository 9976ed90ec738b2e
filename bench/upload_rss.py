#!/usr/bin/env python3
"""Benchmark: peak memory of `cat2rs serve` while it receives a large upload, for a file
stored verbatim (an .h5 name: the body starts with a small HDF5 file, which is what the
server checks) and for one compressed into a .b2 super-chunk. The sampler and the upload
body are also used by bench/side_by_side.py.

Usage: .venv/bin/python bench/upload_rss.py [--bin target/release/cat2rs] [--size-mb 1024]
"""

import argparse
import pathlib
import shutil
import sys
import tempfile
import threading
import time

import httpx

from servers import running

REPO = pathlib.Path(__file__).resolve().parent.parent
BOUNDARY = "cat2rsbenchboundary"
BLOCK = (b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4096)[: 1 << 20]


def _hdf5_head():
    """A small HDF5 file written by h5py: the body starts with it, so that the server's
    upload check (the superblock and the root group parse) accepts the body as HDF5; the
    rest of the body is `BLOCK`s, past the file's end of data, as a real file may have."""
    import io

    import h5py
    import numpy as np

    buf = io.BytesIO()
    with h5py.File(buf, "w", libver="earliest") as f:
        f["x"] = np.arange(16)
    return buf.getvalue()


HEAD = _hdf5_head()


def rss_kb(pid):
    """Resident set of process `pid` and all its descendants, in KiB (0 once it is gone)."""
    total = 0
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                total = int(line.split()[1])
        for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += rss_kb(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


class Sampler(threading.Thread):
    """Largest resident set seen while a transfer runs (login's argon2 hash makes the
    process's all-time peak, VmHWM, meaningless here)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, False

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.01)


def multipart(size, filename="big"):
    """A multipart/form-data upload of `size` bytes (field `file`), made of 1 MiB blocks:
    (content type, content length, iterator of blocks)."""
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def blocks():
        yield head
        yield HEAD[:size]
        sent = len(HEAD[:size])
        while sent < size:
            n = min(len(BLOCK), size - sent)
            yield BLOCK[:n]
            sent += n
        yield tail

    return f"multipart/form-data; boundary={BOUNDARY}", len(head) + size + len(tail), blocks()


def holds_payload(path, size):
    """Whether file `path` holds exactly the `size` bytes multipart() sends as the file."""
    with open(path, "rb") as f:
        first = HEAD[:size]
        if f.read(len(first)) != first:
            return False
        left = size - len(first)
        while left:
            want = BLOCK[:min(len(BLOCK), left)]
            if f.read(len(want)) != want:
                return False
            left -= len(want)
        return f.read(1) == b""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target/release/cat2rs"))
    ap.add_argument("--size-mb", type=int, default=1024)
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="cat2rs-rss-"))
    try:
        with running("cat2rs", args.bin, tmp / "state", tmp) as server:
            cookie = server.cookie()
            base = rss_kb(server.proc.pid)
            size = args.size_mb << 20
            for name in ("big.h5", "big.bin"):
                ctype, length, blocks = multipart(size)
                sampler = Sampler(server.proc.pid)
                sampler.start()
                t = time.perf_counter()
                r = httpx.post(f"{server.url}/api/upload/@shared/{name}", content=blocks, timeout=600,
                               headers={"Cookie": cookie, "Content-Type": ctype, "Content-Length": str(length)})
                r.raise_for_status()
                dt = time.perf_counter() - t
                sampler.stop = True
                sampler.join()
                print(f"{name}: {args.size_mb} MB in {dt:.1f} s ({args.size_mb / dt:.0f} MB/s); "
                      f"server RSS during the upload at most {sampler.peak / 1024:.1f} MB "
                      f"(before it {base / 1024:.1f} MB)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
