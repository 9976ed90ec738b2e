"""Replicas side by side: chunk and frame reads through the balancer with 1, 2 and 3
cat2rs replicas on S3 (Garage) and PostgreSQL, and one `cat2rs serve` on a local state
directory, every cat2rs process held to the same CPU quota.

Each replica (and the local server) is put in a cgroup of its own (v1 `cpu`
controller: cfs_quota_us) with `--quota` of one CPU, so that on a two-core machine
the replicas, not the box, are the bottleneck, and adding one adds capacity; Garage,
PostgreSQL, haproxy and this load generator are not held.  Measured for each set-up:

- chunk reads per second: 16 keep-alive connections, each GETting
  `/api/chunk/...?nchunk=i` of the stack's frames in turn (one frame per chunk);
- frame latency: `/api/fetch` of whole frames on one connection: each frame's first
  read ("cold": nothing of it cached yet), and afterwards (median and p90);
- S3 GETs per request (cluster only): requests that reached the Garage nodes through
  haproxy's S3 frontend, divided by the requests made.

    .venv/bin/python bench/cluster.py [--bin target/release/cat2rs] [--quota 0.25]
    .venv/bin/python bench/cluster.py --smoke      (tiny data, short runs)
"""

import argparse
import asyncio
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import blosc2
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import rawhttp  # noqa: E402
import servers  # noqa: E402

CGROUP = pathlib.Path("/sys/fs/cgroup/cpu")
STACK = "@public/bench/stack.b2nd"


def hold(pid, name, quota):
    """Moves process `pid` (all its threads) into a cgroup limited to `quota` CPUs."""
    group = CGROUP / f"cat2rs-bench-{name}"
    group.mkdir(exist_ok=True)
    # A short period: a process held to a quarter of a CPU waits at most ~7.5 ms
    # when it has used its share, not 75 ms (which would make every tail the quota's).
    (group / "cpu.cfs_period_us").write_text("10000")
    (group / "cpu.cfs_quota_us").write_text(str(int(quota * 10000)))
    (group / "cgroup.procs").write_text(str(pid))
    return group


def release(groups):
    for g in groups:
        try:
            for pid in (g / "cgroup.procs").read_text().split():
                (CGROUP / "cgroup.procs").write_text(pid)
            g.rmdir()
        except OSError:
            pass


async def chunk_rate(url, nchunks, concurrency, seconds):
    """Chunk GETs per second over `concurrency` connections, each walking the chunks."""
    conns = [await rawhttp.Connection.open(url) for _ in range(concurrency)]
    try:
        await asyncio.gather(*(c.get(f"/api/chunk/{STACK}?nchunk=0") for c in conns))
        start = time.perf_counter()
        deadline = start + seconds

        async def walk(i, conn):
            n = 0
            while time.perf_counter() < deadline:
                await conn.get(f"/api/chunk/{STACK}?nchunk={(i + n) % nchunks}")
                n += 1
            return n

        counts = await asyncio.gather(*(walk(i, c) for i, c in enumerate(conns)))
        return sum(counts) / (time.perf_counter() - start), sum(counts) + concurrency
    finally:
        for c in conns:
            c.close()


async def frame_latencies(url, nframes, rounds):
    conn = await rawhttp.Connection.open(url)
    times = []
    try:
        for r in range(rounds):
            for i in range(nframes):
                t = time.perf_counter()
                await conn.get(f"/api/fetch/{STACK}?slice_={i}")
                times.append(time.perf_counter() - t)
    finally:
        conn.close()
    return times


def s3_requests(cluster):
    """Requests the S3 frontend of the cluster's haproxy has passed so far."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(cluster / "haproxy.sock"))
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        if row.get("pxname") == "s3" and row.get("svname") == "FRONTEND":
            return int(row["req_tot"])
    raise RuntimeError("no S3 frontend in haproxy's stats")


def measure(url, nframes, opts, cluster=None):
    before = s3_requests(cluster) if cluster else 0
    # Cold: each frame's first read (a cluster's replica has nothing cached yet).
    cold = rawhttp.run(frame_latencies(url, nframes, 1))
    rate, made = rawhttp.run(chunk_rate(url, nframes, 16, opts.seconds))
    times = rawhttp.run(frame_latencies(url, nframes, opts.rounds))
    made += len(times) + len(cold)
    out = {
        "chunk_reads_per_s": rate,
        "frame_cold_median_ms": statistics.median(cold) * 1e3,
        "frame_median_ms": statistics.median(times) * 1e3,
        "frame_p90_ms": statistics.quantiles(times, n=10)[-1] * 1e3,
    }
    if cluster:
        out["s3_requests_per_request"] = (s3_requests(cluster) - before) / made
    return out


def write_state(state, frames):
    (state / "public" / "bench").mkdir(parents=True)
    blosc2.asarray(frames, chunks=(1, *frames.shape[1:]), urlpath=str(state / "public" / "bench" / "stack.b2nd"),
                   mode="w", cparams={"codec": blosc2.Codec.ZSTD, "clevel": 1,
                                      "filters": [blosc2.Filter.BITSHUFFLE]})


def local_mode(binary, state, opts, nframes):
    port = servers.free_port()
    conf = state.parent / "local.toml"
    conf.write_text("[server]\nlogin = false\n")  # as the clusters (--nologin)
    proc = servers.start([binary, "serve", "--conf", str(conf), "--statedir", str(state), "--listen",
                          f"127.0.0.1:{port}", "--loglevel", "warning"], port, cwd=state.parent)
    groups = [hold(proc.pid, "local", opts.quota)]
    try:
        return measure(f"http://127.0.0.1:{port}", nframes, opts)
    finally:
        release(groups)
        proc.terminate()
        proc.wait()


def cluster_mode(binary, state, opts, nframes, replicas, work):
    root = work / f"cluster-{replicas}"
    script = REPO / "scripts" / "cluster.sh"
    subprocess.run([str(script), "up", str(root), "--replicas", str(replicas), "--nologin", "--bin", binary],
                   check=True, capture_output=True)
    groups = []
    try:
        subprocess.run([binary, "import", str(state), "--conf", str(root / "cat2rs.toml")], check=True,
                       capture_output=True)
        for i in range(1, replicas + 1):
            pid = int((root / "pids" / f"replica-{i}.pid").read_text())
            groups.append(hold(pid, f"replica-{i}", opts.quota))
        out = measure((root / "url").read_text().strip(), nframes, opts, cluster=root)
        # The same warm frames from replica 1 itself: what the balancer's hop costs.
        direct = rawhttp.run(frame_latencies("http://" + (root / "replica-1.addr").read_text().strip(), nframes,
                                             opts.rounds))
        out["frame_direct_median_ms"] = statistics.median(direct) * 1e3
        return out
    finally:
        release(groups)
        subprocess.run([str(script), "down", str(root)], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "cat2rs"))
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=4, help="passes over the frames for the latency")
    ap.add_argument("--quota", type=float, default=0.25, help="CPUs each cat2rs process may use")
    ap.add_argument("--smoke", action="store_true", help="tiny data and short runs (keeps this from rotting)")
    ap.add_argument("--json", help="also write the figures here")
    opts = ap.parse_args()
    opts.bin = str(pathlib.Path(opts.bin).resolve())
    if opts.smoke:
        opts.frames, opts.size, opts.seconds, opts.rounds = 4, 64, 1, 1
    if not (CGROUP / "cgroup.procs").exists():
        sys.exit(f"bench/cluster.py needs the cgroup v1 cpu controller at {CGROUP}")
    frames = servers.make_frames(opts.frames, opts.size)
    work = pathlib.Path(tempfile.mkdtemp(prefix="cat2rs-bench-cluster-", dir="/tmp"))
    os.chmod(work, 0o711)
    try:
        state = work / "state"
        write_state(state, frames)
        results = {"local": local_mode(opts.bin, state, opts, opts.frames)}
        for r in (1, 2, 3):
            results[f"cluster_{r}"] = cluster_mode(opts.bin, state, opts, opts.frames, r, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one = results["cluster_1"]["chunk_reads_per_s"]
    print(f"{opts.frames} frames of {opts.size}x{opts.size} uint16, each cat2rs process held to "
          f"{opts.quota:g} CPU")
    print(f"{'set-up':<12} {'chunk reads/s':>14} {'× 1 replica':>12} {'frame cold':>11} {'frame median':>13} "
          f"{'frame p90':>10} {'no balancer':>12} {'S3 req/req':>10}")
    for name, r in results.items():
        s3 = r.get("s3_requests_per_request")
        direct = r.get("frame_direct_median_ms")
        print(f"{name:<12} {r['chunk_reads_per_s']:>14.0f} {r['chunk_reads_per_s'] / one:>11.2f}× "
              f"{r['frame_cold_median_ms']:>9.2f}ms {r['frame_median_ms']:>11.2f}ms {r['frame_p90_ms']:>8.2f}ms "
              f"{'' if direct is None else f'{direct:.2f}ms':>12} {'' if s3 is None else f'{s3:.2f}':>10}")
    ratio = results["cluster_1"]["frame_median_ms"] / results["local"]["frame_median_ms"]
    print(f"cluster frame latency / local: {ratio:.2f}×")
    if opts.json:
        pathlib.Path(opts.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
