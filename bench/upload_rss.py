#!/usr/bin/env python3
"""Benchmark: peak memory (VmHWM) of `cat2rs serve` while it receives a large
upload, for a file stored verbatim (.b2nd target is verified; here an .h5 name
is used so any bytes pass) and for one compressed into a .b2 super-chunk.

Usage: .venv/bin/python bench/upload_rss.py [--bin target/release/cat2rs] [--size-mb 1024]
"""

import argparse
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx

REPO = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm_kb(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


class Sampler(threading.Thread):
    """Largest resident set seen while a transfer runs (login's argon2 hash
    makes the process's all-time peak, VmHWM, meaningless here)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, False

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, vm_kb(self.pid))
            time.sleep(0.01)


def body(size, boundary):
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big\"\r\n"
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    block = (b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4096)[: 1 << 20]
    sent = 0
    while sent < size:
        n = min(len(block), size - sent)
        yield block[:n]
        sent += n
    yield f"\r\n--{boundary}--\r\n".encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target/release/cat2rs"))
    ap.add_argument("--size-mb", type=int, default=1024)
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="cat2rs-rss-"))
    port = free_port()
    try:
        conf = tmp / "server.toml"
        conf.write_text("[server]\nlogin = true\n")
        state = tmp / "state"
        subprocess.run([args.bin, "adduser", "bench@example.com", "benchpass1", "--statedir", str(state)],
                       check=True, stdout=subprocess.DEVNULL)
        env = dict(os.environ, CATERVA2_SECRET="bench")
        proc = subprocess.Popen([args.bin, "serve", f"--conf={conf}", f"--statedir={state}",
                                 f"--listen=127.0.0.1:{port}"], env=env)
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{url}/api/roots", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        r = httpx.post(f"{url}/auth/jwt/login", data={"username": "bench@example.com", "password": "benchpass1"})
        cookie = r.headers["set-cookie"].split(";")[0]
        base = vm_kb(proc.pid)
        size = args.size_mb << 20
        for name in ("big.h5", "big.bin"):
            boundary = "cat2rsbenchboundary"
            sampler = Sampler(proc.pid)
            sampler.start()
            t = time.perf_counter()
            r = httpx.post(f"{url}/api/upload/@shared/{name}", content=body(size, boundary),
                           headers={"Cookie": cookie, "Content-Type": f"multipart/form-data; boundary={boundary}"},
                           timeout=600)
            r.raise_for_status()
            dt = time.perf_counter() - t
            sampler.stop = True
            sampler.join()
            print(f"{name}: {args.size_mb} MB in {dt:.1f} s ({args.size_mb / dt:.0f} MB/s); "
                  f"server RSS during the upload at most {sampler.peak / 1024:.1f} MB "
                  f"(before it {base / 1024:.1f} MB)")
        proc.terminate()
        proc.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
