"""cat2rs as replicas: faults and concurrency on a real cluster.

One cluster for the module, made by ``scripts/cluster.sh up`` (PostgreSQL, three
Garage nodes, three cat2rs replicas, haproxy) in a fresh directory and stopped
at the end; everything goes through the official client.  Tests run in file
order: the later ones kill parts of the cluster the earlier ones need.

- a replica killed with SIGKILL while 16 clients read and write through the
  balancer costs no request;
- with a Garage node killed, reads and writes go on;
- a replica killed in the middle of an upload leaves the dataset absent or
  complete, never half-written;
- 16 writers through different replicas appending to and overwriting the same
  datasets: the final state is a serial order of the successful commits;
- `cat2rs export` gives back a state directory with the datasets and users.
"""

import io
import os
import pathlib
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time

import blosc2
import httpx
import numpy as np
import pytest

import caterva2 as cat2

REPO = pathlib.Path(__file__).resolve().parents[2]
ADMIN = ("admin@example.com", "cluster-secret")


class Cluster:
    def __init__(self, root):
        self.root = root
        self.url = (root / "url").read_text().strip()

    def replica_url(self, i):
        return "http://" + (self.root / f"replica-{i}.addr").read_text().strip()

    def pid(self, name):
        return int((self.root / "pids" / f"{name}.pid").read_text())

    def kill9(self, name):
        pid = self.pid(name)
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def client(self, url=None):
        return cat2.Client(url or self.url, ADMIN, timeout=60)


@pytest.fixture(scope="module")
def cluster():
    # Reachable by the postgres user, which runs the database.
    root = pathlib.Path(tempfile.mkdtemp(prefix="cat2rs-cluster-", dir="/tmp"))
    os.chmod(root, 0o711)
    up = subprocess.run([str(REPO / "scripts" / "cluster.sh"), "up", str(root), "--replicas", "3",
                         "--admin", f"{ADMIN[0]}:{ADMIN[1]}"], capture_output=True, text=True)
    if up.returncode != 0:
        subprocess.run([str(REPO / "scripts" / "cluster.sh"), "down", str(root)], capture_output=True)
        pytest.fail(f"the cluster did not start:\n{up.stdout}\n{up.stderr}")
    try:
        yield Cluster(root)
    finally:
        subprocess.run([str(REPO / "scripts" / "cluster.sh"), "down", str(root)], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def array_file(tmp_path, name, values, chunks=None):
    path = tmp_path / name
    blosc2.asarray(values, chunks=chunks, urlpath=str(path), mode="w")
    return path


def run_clients(n, work, seconds):
    """Runs work(i, stop) in n threads for `seconds`; answers the failures."""
    failures = []
    stop = threading.Event()

    def body(i):
        try:
            work(i, stop)
        except Exception as e:  # noqa: BLE001 - every failure is the finding
            failures.append(f"client {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(120)
    return failures


def test_the_cluster_serves_what_a_single_server_does(cluster, tmp_path):
    c = cluster.client()
    data = np.arange(300 * 200, dtype=np.int32).reshape(300, 200)
    c.upload(array_file(tmp_path, "a.b2nd", data, chunks=(50, 200)), "@shared/base/a.b2nd")
    # Every replica sees it at once: one catalog.
    for i in (1, 2, 3):
        r = cluster.client(cluster.replica_url(i)).get("@shared/base/a.b2nd")
        assert np.array_equal(r[7:9, 3:100], data[7:9, 3:100])
    lazy = c.upload(blosc2.lazyexpr("where(a < 10, a * 32000, a)", operands={"a": c.get("@shared/base/a.b2nd")}),
                    "@shared/base/lazy.b2nd")
    assert np.array_equal(lazy[0:2, 0:20], np.where(data < 10, data * 32000, data)[0:2, 0:20])
    assert httpx.get(f"{cluster.url}/healthz").status_code == 200


def test_a_replica_killed_under_load_costs_no_request(cluster, tmp_path):
    data = np.arange(100 * 100, dtype=np.float64).reshape(100, 100)
    small = array_file(tmp_path, "small.b2nd", data[:20], chunks=(10, 100))
    setup = cluster.client()
    setup.upload(array_file(tmp_path, "r.b2nd", data, chunks=(25, 100)), "@shared/load/r.b2nd")
    counts = [0] * 16

    def work(i, stop):
        c = cluster.client()
        remote = c.get("@shared/load/r.b2nd")
        while not stop.is_set():
            if i % 4 == 0:
                c.upload(small, f"@shared/load/w{i}.b2nd")
            else:
                row = (counts[i] * 7 + i) % 100
                assert np.array_equal(remote[row], data[row])
            counts[i] += 1

    killer = threading.Timer(1.5, cluster.kill9, args=("replica-1",))
    killer.start()
    failures = run_clients(16, work, seconds=5)
    killer.join()
    assert not failures, failures[:5]
    assert sum(counts) > 100, counts
    assert httpx.get(f"{cluster.url}/healthz").status_code == 200


def test_reads_and_writes_go_on_with_a_storage_node_killed(cluster, tmp_path):
    cluster.kill9("garage-3")
    c = cluster.client()
    data = np.arange(50_000, dtype=np.int64)
    for k in range(5):
        c.upload(array_file(tmp_path, f"g{k}.b2nd", data + k, chunks=(10_000,)), f"@shared/garage/g{k}.b2nd")
    for k in range(5):
        got = c.get(f"@shared/garage/g{k}.b2nd")[:]
        assert np.array_equal(got, data + k)
    assert np.array_equal(c.get("@shared/base/a.b2nd")[0], np.arange(200, dtype=np.int32))


def test_a_replica_killed_mid_upload_leaves_nothing_half_written(cluster, tmp_path):
    # 64 MB of incompressible data: long enough to kill the replica in the middle.
    rng = np.random.default_rng(7)
    big = rng.integers(0, 2**62, size=8_000_000, dtype=np.int64)
    path = array_file(tmp_path, "big.b2nd", big, chunks=(1_000_000,))
    target = cluster.replica_url(3)
    failed = []

    def upload():
        try:
            cluster.client(target).upload(path, "@shared/mid/big.b2nd")
        except Exception as e:  # noqa: BLE001 - expected: the replica died
            failed.append(e)

    t = threading.Thread(target=upload)
    t.start()
    time.sleep(0.4)
    cluster.kill9("replica-3")
    t.join(120)
    assert failed, "the upload finished before the replica was killed; the test saw no fault"
    c = cluster.client()
    listing = c.get_list("@shared")
    if "mid/big.b2nd" in listing:
        assert np.array_equal(c.get("@shared/mid/big.b2nd")[:], big)


def append(client, path, block):
    """`Client.append`'s request, without its check that nobody else appended
    meanwhile (it compares the new length with the one it saw before, which
    other writers change here); answers the new shape."""
    frame = blosc2.asarray(block).to_cframe()
    r = client.httpx_client.post(f"{client.urlbase}/api/append/{path}", files={"file": io.BytesIO(frame)},
                                 headers={"Cookie": client.cookie}, timeout=60)
    r.raise_for_status()
    return tuple(r.json())


def test_concurrent_writers_lose_no_update(cluster, tmp_path):
    c = cluster.client()
    c.upload(array_file(tmp_path, "log.b2nd", np.array([-1], dtype=np.int64)), "@shared/cc/log.b2nd")
    urls = [cluster.url, cluster.replica_url(2)]  # replica 1 and 3 were killed above
    appended = [[] for _ in range(16)]
    uploaded = [[] for _ in range(16)]

    def work(i, stop):
        cl = cluster.client(urls[i % len(urls)])
        k = 0
        while not stop.is_set() and k < 6:
            block = np.arange(i * 1000 + k * 10, i * 1000 + k * 10 + 10, dtype=np.int64)
            shape = append(cl, "@shared/cc/log.b2nd", block)
            assert shape[0] >= 11
            appended[i].append(block)
            whole = np.full(1000, i * 100 + k, dtype=np.int64)
            cl.upload(array_file(tmp_path, f"o{i}.b2nd", whole), "@shared/cc/over.b2nd")
            uploaded[i].append(whole)
            k += 1

    failures = run_clients(16, work, seconds=30)
    assert not failures, failures[:5]
    log = c.get("@shared/cc/log.b2nd")[:]
    blocks = [b for per in appended for b in per]
    assert len(log) == 1 + 10 * len(blocks)
    assert log[0] == -1
    # Every successful append is there, whole, once: some serial order of them.
    seen = {int(log[j]): log[j:j + 10] for j in range(1, len(log), 10)}
    assert len(seen) == len(blocks)
    for b in blocks:
        assert np.array_equal(seen[int(b[0])], b)
    # The overwritten dataset is one of the uploads, whole (never a mix of two).
    over = c.get("@shared/cc/over.b2nd")[:]
    assert any(np.array_equal(over, u) for per in uploaded for u in per)
    assert len(set(over.tolist())) == 1


def test_export_gives_back_a_state_directory(cluster, tmp_path):
    """`cat2rs export` copies the cluster's datasets and users into a state directory."""
    binary = os.environ.get("CAT2RS_BIN") or str(REPO / "target" / "debug" / "cat2rs")
    out = tmp_path / "exported"
    subprocess.run([binary, "export", str(out), "--conf", str(cluster.root / "cat2rs.toml")], check=True,
                   capture_output=True)
    a = blosc2.open(str(out / "shared" / "base" / "a.b2nd"))
    assert np.array_equal(a[:], np.arange(300 * 200, dtype=np.int32).reshape(300, 200))
    log = blosc2.open(str(out / "shared" / "cc" / "log.b2nd"))[:]
    assert np.array_equal(log, cluster.client().get("@shared/cc/log.b2nd")[:])
    with sqlite3.connect(out / "db.sqlite") as db:
        emails = [r[0] for r in db.execute("SELECT email FROM user")]
    assert emails == [ADMIN[0]]
    # The local user database, as a single server reads it, holds the same user.
    listed = subprocess.run([binary, "listusers", "--statedir", str(out)], check=True, capture_output=True,
                            text=True).stdout
    assert ADMIN[0] in listed
