"""Hostile requests against a real `cat2rs serve` with small budgets.

Each test asks for more than a request may have — memory, time, files,
connections — and checks that the server refuses it with a 4xx that says
why (never a 5xx), that its memory (RSS sampled from /proc) stays under the
configured ceiling, that abandoned work stops (the CPU falls idle), that
half-sent requests are cut off, and that the server is alive afterwards.

The server runs with request_memory_limit = 64M, total_memory_limit = 128M,
compute_time_limit = 4 s, header/body timeouts of 2 s and 16 connections,
so every refusal happens within seconds.
"""

import json
import os
import socket
import threading
import time

import blosc2
import httpx
import numpy as np
import pytest

from loginmode import IS_REFERENCE, start_server

pytestmark = pytest.mark.skipif(IS_REFERENCE, reason="cat2rs's budgets (the reference has none)")

USER = ("limits@example.com", "limitspass1")
MIB = 1 << 20
LIMITS = {
    "request_memory_limit": "64M",
    "total_memory_limit": "128M",
    "compute_time_limit": 4,
    "header_timeout": 2,
    "body_timeout": 2,
    "max_connections": 16,
    "max_frame_side": 2048,
}
# What the server may hold beyond its budgets: code, caches, buffers of
# connections, the allocator's slack.
SLACK = 160 * MIB
NOISE_ITEMS = 1 << 24


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    work = tmp_path_factory.mktemp("limits")
    public = work / "state" / "public"
    public.mkdir(parents=True)
    # 80 GB of zeros in a file of a few kilobytes.
    blosc2.zeros((10**10,), dtype="f8", urlpath=str(public / "zeros.b2nd"), mode="w")
    # Chunks of 1 GiB declared by tiny files: an array and a regular file.
    blosc2.zeros((2**27,), dtype="f8", chunks=(2**27,), blocks=(2**17,),
                 urlpath=str(public / "hugechunks.b2nd"), mode="w")
    sc = blosc2.SChunk(chunksize=1 << 30, urlpath=str(public / "hugechunks.txt.b2"), mode="w",
                       cparams={"typesize": 1})
    sc.append_data(b"x" * (1 << 30))
    blosc2.asarray(np.arange(10**6, dtype="f8"), urlpath=str(public / "ramp.b2nd"), mode="w")
    # 128 MiB of noise, which compresses to more than a request's memory.
    noise = np.random.default_rng(7).random(NOISE_ITEMS)
    blosc2.asarray(noise, chunks=(1 << 20,), urlpath=str(public / "noise.b2nd"), mode="w")
    blosc2.asarray(np.arange(4 * 64 * 64, dtype="f4").reshape(4, 64, 64),
                   urlpath=str(public / "stack.b2nd"), mode="w")
    s = start_server(work, statedir=work / "state", settings=LIMITS)
    try:
        s.add_user(*USER)
        yield s
    finally:
        s.close()


class Sampler:
    """The server's peak RSS while a block runs (from /proc, every 20 ms)."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def rss(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def __enter__(self):
        self.base = self.rss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    def grew(self):
        return self.peak - self.base


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_files(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def detail(r):
    try:
        return r.json().get("detail", r.text)
    except ValueError:
        return r.text


def alive(srv):
    assert srv.proc.poll() is None, srv.log_tail()
    assert httpx.get(f"{srv.url}/api/roots", timeout=10).status_code == 200


def logged_in(srv):
    return srv.http(cookie=srv.login_cookie(*USER), timeout=60)


def save_expression(http, name, expression, operands=None, compute=False):
    return http.post("/api/lazyexpr/", json={"name": name, "expression": expression,
                                             "operands": operands or {}, "shape": None,
                                             "func": None, "dtype": None,
                                             "compute": compute})


def test_a_slice_of_80_gb_of_zeros_stays_within_the_budget(srv):
    http = srv.http(timeout=60)
    with Sampler(srv.proc.pid) as s:
        t0 = time.monotonic()
        r = http.get("/api/fetch/@public/zeros.b2nd", params={"slice_": "1:"})
        took = time.monotonic() - t0
    assert r.status_code in (413, 422), (r.status_code, detail(r))
    assert "limit" in detail(r)
    assert took < 30
    assert s.grew() < 128 * MIB + SLACK, s.grew()
    alive(srv)


def test_huge_chunks_are_refused_before_they_are_decompressed(srv):
    http = srv.http()
    with Sampler(srv.proc.pid) as s:
        r = http.get("/api/fetch/@public/hugechunks.b2nd", params={"slice_": "0:10"})
        assert r.status_code == 413, (r.status_code, detail(r))
        assert "chunks of 1 GiB" in detail(r)
        r = http.get("/api/preview/@public/hugechunks.txt")
        assert r.status_code == 413, (r.status_code, detail(r))
        r = http.get("/api/download/@public/hugechunks.txt")
        assert r.status_code == 413, (r.status_code, detail(r))
    assert s.grew() < SLACK, s.grew()
    alive(srv)


def test_a_huge_computation_is_stopped_by_its_budget(srv):
    http = logged_in(srv)
    with Sampler(srv.proc.pid) as s:
        t0 = time.monotonic()
        r = save_expression(http, "huge", "linspace(0, 1, 10**12)", compute=True)
        took = time.monotonic() - t0
    assert r.status_code in (413, 422), (r.status_code, detail(r))
    assert took < 30
    assert s.grew() < 128 * MIB + SLACK, s.grew()
    alive(srv)


def test_a_computed_result_larger_than_a_request_budget_is_stored(srv):
    """compute=true writes its result into storage chunk by chunk: a result
    larger, compressed, than the request's memory (made in memory, it would
    need it twice) is stored whole in bounded memory, and reads back as
    computed."""
    http = logged_in(srv)
    with Sampler(srv.proc.pid) as s:
        r = save_expression(http, "noisy", "a * 2 + 1", {"a": "@public/noise.b2nd"}, compute=True)
    assert r.status_code == 200, (r.status_code, detail(r))
    stored = srv.personal_dir(USER[0]) / "noisy.b2nd"
    assert stored.stat().st_size > 64 * MIB, stored.stat().st_size
    assert s.grew() < 64 * MIB + SLACK, s.grew()
    result = blosc2.open(str(stored))
    assert result.shape == (NOISE_ITEMS,)
    noise = blosc2.open(str(srv.statedir / "public" / "noise.b2nd"))
    for start in (0, NOISE_ITEMS // 2 + 12345, NOISE_ITEMS - 1000):
        np.testing.assert_array_equal(result[start:start + 1000], noise[start:start + 1000] * 2 + 1)
    # No staged leftovers beside it (the lock file writers share stays).
    assert {p.name for p in stored.parent.iterdir()} <= {"noisy.b2nd", "noisy.b2nd.b2lock"}
    alive(srv)


def spill_files(srv):
    return [p.name for p in srv.statedir.iterdir() if p.name.startswith(".cat2rs-tmp-")]


def test_a_computed_answer_larger_than_a_request_budget_is_spilled_and_sent(srv):
    """A fetch (and a download) of a computed answer larger, compressed,
    than the request's memory is spilled into storage and streamed from
    there in bounded memory; the spill is gone once it is sent."""
    http = logged_in(srv)
    r = save_expression(http, "noisy_lazy", "a * 2 + 1", {"a": "@public/noise.b2nd"})
    assert r.status_code == 200, (r.status_code, detail(r))
    noise = blosc2.open(str(srv.statedir / "public" / "noise.b2nd"))
    for route in ("/api/fetch/@personal/noisy_lazy.b2nd", "/api/download/@personal/noisy_lazy.b2nd"):
        with Sampler(srv.proc.pid) as s:
            r = http.get(route)
        assert r.status_code == 200, (route, r.status_code, detail(r))
        assert len(r.content) > 64 * MIB, len(r.content)
        assert int(r.headers["content-length"]) == len(r.content)
        assert s.grew() < 64 * MIB + SLACK, (route, s.grew())
        result = blosc2.ndarray_from_cframe(r.content)
        assert result.shape == (NOISE_ITEMS,)
        for start in (0, NOISE_ITEMS // 3, NOISE_ITEMS - 1000):
            np.testing.assert_array_equal(result[start:start + 1000],
                                          noise[start:start + 1000] * 2 + 1)
        del r, result
        deadline = time.monotonic() + 10
        while spill_files(srv) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert spill_files(srv) == []
    alive(srv)


def small_server(tmp_path, name, settings, seed, **array_kw):
    """A server of its own with `settings` on top of LIMITS, holding 4 Mi
    random f8 as @public/noise.b2nd, and USER's logged-in client."""
    public = tmp_path / name / "state" / "public"
    public.mkdir(parents=True)
    noise = np.random.default_rng(seed).random(1 << 22)
    blosc2.asarray(noise, urlpath=str(public / "noise.b2nd"), mode="w", **array_kw)
    s = start_server(tmp_path / name, statedir=tmp_path / name / "state", settings={**LIMITS, **settings})
    try:
        s.add_user(*USER)
        return s, s.http(cookie=s.login_cookie(*USER), timeout=60)
    except BaseException:
        s.close()
        raise


def test_spills_of_all_requests_together_are_bounded(tmp_path):
    """total_disk_limit bounds the spills of all requests together: a spill
    past it is a 503 naming it (the answer's own limit is not reached), and
    what it held is given back (a smaller answer is served afterwards)."""
    s, http = small_server(tmp_path, "spills",
                           {"request_memory_limit": "16M", "total_disk_limit": "24M"},
                           seed=9, chunks=(1 << 16,))
    try:
        r = save_expression(http, "lazy", "a * 2 + 1", {"a": "@public/noise.b2nd"})
        assert r.status_code == 200, (r.status_code, detail(r))
        r = http.get("/api/fetch/@personal/lazy.b2nd")
        assert r.status_code == 503, (r.status_code, detail(r))
        assert "total_disk_limit" in detail(r)
        r = http.get("/api/fetch/@personal/lazy.b2nd", params={"slice_": ":1000000"})
        assert r.status_code == 200, (r.status_code, detail(r))
        assert blosc2.ndarray_from_cframe(r.content).shape == (1000000,)
        assert spill_files(s) == []
    finally:
        s.close()


def test_a_computed_result_past_the_quota_is_refused_and_leaves_nothing(tmp_path):
    """The quota is checked as the result is written: past it, a 400 with
    the quota message, and no file (nor a staged part of one) is left; an
    answer spilled past request_disk_limit is a 413 that names it."""
    s, http = small_server(tmp_path, "quota", {"quota": "40M", "request_disk_limit": "8M"}, seed=8)
    try:
        r = save_expression(http, "big", "a * 2 + 1", {"a": "@public/noise.b2nd"}, compute=True)
        assert r.status_code == 400, (r.status_code, detail(r))
        assert "quota" in detail(r)
        mine = s.personal_dir(USER[0])
        assert not mine.exists() or {p.name for p in mine.iterdir()} <= {"big.b2nd.b2lock"}
        r = save_expression(http, "small", "a[:1000] * 2", {"a": "@public/noise.b2nd"}, compute=True)
        assert r.status_code == 200, (r.status_code, detail(r))
        # Fetched instead, the same result is spilled, up to request_disk_limit.
        r = save_expression(http, "lazy", "a * 2 + 1", {"a": "@public/noise.b2nd"})
        assert r.status_code == 200, (r.status_code, detail(r))
        r = http.get("/api/fetch/@personal/lazy.b2nd")
        assert r.status_code == 413, (r.status_code, detail(r))
        assert "request_disk_limit" in detail(r)
        assert spill_files(s) == []
    finally:
        s.close()


def test_abandoned_computations_stop(srv):
    http = logged_in(srv)
    r = save_expression(http, "endless", "sum(linspace(0, 1, 10**12))")
    assert r.status_code == 200, detail(r)
    cookie = http.headers["Cookie"]

    def abandon():
        try:
            httpx.get(f"{srv.url}/api/fetch/@personal/endless.b2nd", headers={"Cookie": cookie}, timeout=1)
        except httpx.TimeoutException:
            pass

    threads = [threading.Thread(target=abandon) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The client went away after 1 s; the work stops within a piece.
    time.sleep(1.5)
    before = cpu_seconds(srv.proc.pid)
    time.sleep(2)
    busy = cpu_seconds(srv.proc.pid) - before
    assert busy < 0.5, f"the server kept computing for nobody: {busy:.2f} s of CPU in 2 s"
    # Asked for and waited for, it stops at the time limit with a 422.
    t0 = time.monotonic()
    r = http.get("/api/fetch/@personal/endless.b2nd")
    assert r.status_code == 422, (r.status_code, detail(r))
    assert "compute_time_limit" in detail(r)
    assert time.monotonic() - t0 < 20
    alive(srv)


def test_many_indices_are_bounded_even_in_parallel(srv):
    body = json.dumps({"indices": json.dumps([list(range(0, 10**6, 1))])})
    results = []

    def ask():
        with httpx.Client(timeout=60) as c:
            results.append(c.post(f"{srv.url}/api/fetch/@public/ramp.b2nd", content=body,
                                  headers={"Content-Type": "application/json"}))

    with Sampler(srv.proc.pid) as s:
        threads = [threading.Thread(target=ask) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for r in results:
        assert r.status_code == 413, (r.status_code, detail(r))
    assert s.grew() < 128 * MIB + SLACK, s.grew()
    # Fewer indices are served.
    r = srv.http().post("/api/fetch/@public/ramp.b2nd", json={"indices": json.dumps([[1, 5, 7]])})
    assert r.status_code == 200, detail(r)
    assert blosc2.ndarray_from_cframe(r.content)[:].tolist() == [1.0, 5.0, 7.0]
    alive(srv)


def test_viewer_frames_are_capped(srv):
    http = srv.http()
    r = http.get("/gui/frame/@public/stack.b2nd", params={"axis": 0, "i": 1, "max": 100000000})
    assert r.status_code == 400, (r.status_code, detail(r))
    assert "max_frame_side" in detail(r)
    r = http.get("/gui/frame/@public/stack.b2nd", params={"axis": 0, "i": 1, "max": 64})
    assert r.status_code == 200, detail(r)


def test_diamond_expressions_are_evaluated_as_graphs(srv):
    http = logged_in(srv)
    base = np.arange(1000, dtype="f8")
    r = save_expression(http, "d0", "a + 0", {"a": "@public/ramp.b2nd"})
    assert r.status_code == 200, detail(r)
    depth = 14  # lazy expressions nest at most 16 deep; as a tree this is 2**14 opens per box
    for i in range(1, depth + 1):
        prev = f"@personal/d{i - 1}.b2nd"
        r = save_expression(http, f"d{i}", "a + b", {"a": prev, "b": prev})
        assert r.status_code == 200, (i, detail(r))
    files = open_files(srv.proc.pid)
    t0 = time.monotonic()
    r = http.get(f"/api/fetch/@personal/d{depth}.b2nd", params={"slice_": "0:1000"})
    assert r.status_code == 200, detail(r)
    assert time.monotonic() - t0 < 20
    got = blosc2.ndarray_from_cframe(r.content)[:]
    np.testing.assert_array_equal(got, base * 2**depth)
    assert open_files(srv.proc.pid) < files + 64
    alive(srv)


def test_too_many_distinct_operands_are_refused(srv, tmp_path):
    http = logged_in(srv)
    many = tmp_path / "placed" / "public" / "many"
    many.mkdir(parents=True)
    for i in range(70):
        blosc2.asarray(np.full(10, i, dtype="i4"), urlpath=str(many / f"a{i}.b2nd"), mode="w")
    srv.place(tmp_path / "placed")
    names = {f"a{i}": f"@public/many/a{i}.b2nd" for i in range(70)}
    r = save_expression(http, "wide", " + ".join(names), names)
    assert r.status_code == 400, (r.status_code, detail(r))
    assert "more than 64 distinct datasets" in detail(r)
    few = dict(list(names.items())[:60])
    r = save_expression(http, "wide", " + ".join(few), few)
    assert r.status_code == 200, detail(r)
    r = http.get("/api/fetch/@personal/wide.b2nd")
    assert blosc2.ndarray_from_cframe(r.content)[:].tolist() == [sum(range(60))] * 10
    alive(srv)


def raw(srv):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    return s


def closed_within(sock, seconds):
    """Whether the server closes *sock* within *seconds* (it may answer first)."""
    sock.settimeout(seconds)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


@pytest.mark.direct_connection
def test_idle_and_half_sent_requests_are_cut_off(srv):
    idle = raw(srv)
    half_headers = raw(srv)
    half_headers.sendall(b"GET /api/roots HTTP/1.1\r\nHost: x\r\n")
    half_body = raw(srv)
    half_body.sendall(b"POST /api/fetch/@public/ramp.b2nd HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"slice_\":")
    kept_alive = raw(srv)
    kept_alive.sendall(b"GET /api/roots HTTP/1.1\r\nHost: x\r\n\r\n")
    kept_alive.settimeout(10)
    assert kept_alive.recv(65536).startswith(b"HTTP/1.1 200")
    for name, sock in [("idle", idle), ("half headers", half_headers), ("half body", half_body),
                       ("idle keep-alive", kept_alive)]:
        assert closed_within(sock, 8), f"{name} connection still open after 8 s"
        sock.close()
    alive(srv)


@pytest.mark.direct_connection
def test_connections_beyond_the_limit_wait_for_a_slot(srv):
    hogs = [raw(srv) for _ in range(LIMITS["max_connections"])]
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        r = httpx.get(f"{srv.url}/api/roots", timeout=30)
        waited = time.monotonic() - t0
        assert r.status_code == 200
        # Served once the idle ones were cut off (header_timeout = 2 s).
        assert waited > 1.0, waited
    finally:
        for h in hogs:
            h.close()
    alive(srv)


OTHER = ("links-other@example.com", "otherpass12")


def upload(http, path, data, filename="f.txt"):
    import io
    return http.post(f"/api/upload/{path}", files={"file": (filename, io.BytesIO(data))})


@pytest.mark.local_state  # symbolic links in the state directory
def test_links_are_served_only_inside_their_root(srv, tmp_path):
    public = srv.statedir / "public"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("the machine's")
    os.symlink("/etc/passwd", public / "passwd")
    os.symlink("ramp.b2nd", public / "latest.b2nd")
    anon = srv.http()
    r = anon.get("/api/info/@public/passwd")
    assert r.status_code == 404, (r.status_code, detail(r))
    r = anon.get("/api/download/@public/passwd")
    assert r.status_code == 404, (r.status_code, detail(r))
    assert "passwd" not in anon.get("/api/list/@public").json()
    assert not (public / "passwd.b2").exists(), "first-touch compression followed a link"
    r = anon.get("/api/info/@public/latest.b2nd")
    assert r.status_code == 200, detail(r)
    assert r.json()["shape"] == [10**6]
    # A link inside its root to a plain file is not rewritten either.
    (public / "notes").mkdir(exist_ok=True)
    (public / "notes" / "plain.txt").write_text("plain")
    os.symlink("plain.txt", public / "notes" / "link.txt")
    r = anon.get("/api/download/@public/notes/link.txt")
    assert r.status_code == 403, (r.status_code, detail(r))
    assert os.path.islink(public / "notes" / "link.txt")
    alive(srv)


@pytest.mark.local_state  # symbolic links in the state directory
def test_links_do_not_cross_users_or_carry_writes_out(srv, tmp_path):
    srv.add_user(*OTHER)
    owner = logged_in(srv)
    assert upload(owner, "@personal/private.txt", b"mine").status_code == 200
    victim_dir = srv.personal_dir(USER[0])
    assert (victim_dir / "private.txt.b2").exists()
    # Someone with access to the state directory links it into @shared.
    shared = srv.statedir / "shared"
    shared.mkdir(exist_ok=True)
    os.symlink(victim_dir, shared / "victim")
    outside = tmp_path / "outside"
    outside.mkdir()
    other = srv.http(cookie=srv.login_cookie(*OTHER))
    assert "victim/private.txt" not in other.get("/api/list/@shared").json()
    assert other.get("/api/info/@shared/victim/private.txt").status_code == 404
    r = other.post("/api/copy/", json={"src": "@shared/victim/private.txt", "dst": "@personal/stolen.txt"})
    assert r.status_code in (400, 404), (r.status_code, detail(r))
    r = other.post("/api/remove/@shared/victim/private.txt")
    assert r.status_code in (400, 404), (r.status_code, detail(r))
    assert (victim_dir / "private.txt.b2").exists()
    # Writes never go through a directory link, inside the state or out of it.
    other_dir = srv.personal_dir(OTHER[0])
    other_dir.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, other_dir / "out")
    r = upload(other, "@personal/out/f.txt", b"escape")
    assert 400 <= r.status_code < 500, (r.status_code, detail(r))
    r = upload(other, "@shared/victim/planted.txt", b"planted")
    assert 400 <= r.status_code < 500, (r.status_code, detail(r))
    assert list(outside.iterdir()) == []
    assert not (victim_dir / "planted.txt.b2").exists()
    alive(srv)


def test_no_5xx_was_answered(srv):
    assert srv.errors == [], srv.errors


def mutants(data, n, seed):
    """*n* copies of *data*, each with a few bytes changed, cut or doubled (a fixed seed)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        b = bytearray(data)
        kind = rng.integers(0, 3)
        if kind == 0:
            for _ in range(int(rng.integers(1, 9))):
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        elif kind == 1:
            b = b[: int(rng.integers(1, len(b)))]
        else:
            at = int(rng.integers(0, len(b)))
            b = b[:at] + b[at:at + int(rng.integers(1, 64))] + b[at:]
        out.append(bytes(b))
    return out


def test_damaged_stored_files_are_4xx_never_5xx(srv, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    arr = np.arange(4000, dtype="f8").reshape(40, 100)
    blosc2.asarray(arr, chunks=(10, 50), blocks=(5, 25), urlpath=str(src / "a.b2nd"), mode="w")
    sc = blosc2.SChunk(chunksize=4000, urlpath=str(src / "f.b2frame"), mode="w", cparams={"typesize": 4})
    for i in range(3):
        sc.append_data(np.arange(i * 1000, (i + 1) * 1000, dtype="i4").tobytes())
    with blosc2.TreeStore(str(src / "t.b2z"), mode="w") as ts:
        ts["/a"] = np.arange(1000, dtype="<i4")
        ts["/g/b"] = np.linspace(0, 1, 600, dtype="<f8").reshape(20, 30)
    import h5py
    with h5py.File(src / "h.h5", "w") as h:
        # No timestamps: the same bytes, so the same mutants, on every run.
        h.create_dataset("data", data=arr, chunks=(10, 50), compression="gzip", track_times=False)
        h.create_group("g", track_order=False).create_dataset("c", data=np.arange(100, dtype="i2"),
                                                              track_times=False)
    originals = {".b2nd": (src / "a.b2nd").read_bytes(), ".b2frame": (src / "f.b2frame").read_bytes(),
                 ".b2z": (src / "t.b2z").read_bytes(), ".h5": (src / "h.h5").read_bytes()}
    inner = {".b2z": "/g/b", ".h5": "/data"}
    mut = tmp_path / "placed" / "public" / "mutants"
    mut.mkdir(parents=True)
    paths = []
    for suffix, data in originals.items():
        for i, m in enumerate(mutants(data, 100, seed=15 + len(suffix))):
            (mut / f"m{i}{suffix}").write_bytes(m)
            paths.append(f"@public/mutants/m{i}{suffix}")
            if suffix in inner:
                paths.append(f"@public/mutants/m{i}{suffix}{inner[suffix]}")
    srv.place(tmp_path / "placed")
    http = srv.http(timeout=20)
    fivexx, unnamed = [], []
    for p in paths:
        for method, url, params in [("GET", f"/api/info/{p}", None),
                                    ("GET", f"/api/fetch/{p}", {"slice_": "0:7"}),
                                    ("GET", f"/api/fetch/{p}", None),
                                    ("GET", f"/api/chunk/{p}", {"nchunk": 1})]:
            try:
                r = http.request(method, url, params=params)
            except httpx.TimeoutException:
                fivexx.append((url, params, "timed out"))
                continue
            if r.status_code >= 500:
                fivexx.append((url, params, r.status_code, r.text[:200]))
            elif r.status_code == 422 and "could not be decoded" in r.text and p not in r.text:
                unnamed.append((url, params, r.text[:200]))
    srv.errors.clear()  # counted here, with the file that caused each
    assert fivexx == [], f"{len(fivexx)} answers of 5xx, e.g. {fivexx[:5]}"
    assert unnamed == [], f"{len(unnamed)} answers do not name their dataset, e.g. {unnamed[:5]}"
    alive(srv)


def test_a_damaged_chunk_is_named_with_its_dataset(srv, tmp_path):
    src = tmp_path / "d.b2nd"
    a = blosc2.asarray(np.arange(4000, dtype="f8").reshape(40, 100), chunks=(10, 50),
                       blocks=(5, 25), urlpath=str(src), mode="w")
    data = bytearray(src.read_bytes())
    at = data.find(a.schunk.get_chunk(5))  # chunk 5 holds [20:30, 50:100]
    assert at > 0
    data[at] = 0xFF  # its format version: one no C-Blosc2 reads
    dest = tmp_path / "placed" / "public" / "damaged"
    dest.mkdir(parents=True)
    (dest / "d.b2nd").write_bytes(bytes(data))
    srv.place(tmp_path / "placed")
    http = srv.http(timeout=20)
    url = "/api/fetch/@public/damaged/d.b2nd"
    for sl in ["20:30,50:100", "15:35,40:60", "0:40"]:
        r = http.get(url, params={"slice_": sl})
        assert r.status_code == 422, (sl, r.status_code, detail(r))
        assert "@public/damaged/d.b2nd" in detail(r) and "chunk 5" in detail(r), detail(r)
        assert str(srv.statedir) not in r.text
    # The chunks around it are served; the chunk itself is refused, named.
    r = http.get(url, params={"slice_": "0:20"})
    assert r.status_code == 200, detail(r)
    assert http.get("/api/chunk/@public/damaged/d.b2nd", params={"nchunk": 4}).status_code == 200
    r = http.get("/api/chunk/@public/damaged/d.b2nd", params={"nchunk": 5})
    assert r.status_code == 422 and "chunk 5" in detail(r), (r.status_code, detail(r))
    # An expression reading it says the same.
    user = logged_in(srv)
    r = save_expression(user, "dmg", "d * 2", {"d": "@public/damaged/d.b2nd"})
    assert r.status_code == 200, detail(r)
    r = user.get("/api/fetch/@personal/dmg.b2nd", params={"slice_": "20:21"})
    assert r.status_code == 422, (r.status_code, detail(r))
    assert "@public/damaged/d.b2nd" in detail(r) and "chunk 5" in detail(r), detail(r)
    assert srv.errors == [], srv.errors
    alive(srv)


def test_hdf5_groups_linked_in_a_cycle_are_listed_once(srv, tmp_path):
    import h5py
    path = tmp_path / "placed" / "public" / "cycle.h5"
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as h:
        g = h.create_group("g")
        g["data"] = np.arange(10)
        g["loop"] = g               # a hard link from a group to itself
        g.create_group("sub")["up"] = h["/"]   # and back to the root
    srv.place(tmp_path / "placed")
    http = srv.http(timeout=20)
    r = http.get("/api/list/@public/cycle.h5")
    assert r.status_code == 200, detail(r)
    assert r.json() == ["g/data"], r.json()
    r = http.get("/api/fetch/@public/cycle.h5/g/data", params={"slice_": "2:5"})
    assert r.status_code == 200, detail(r)
    np.testing.assert_array_equal(blosc2.ndarray_from_cframe(r.content)[:], [2, 3, 4])
    assert srv.errors == [], srv.errors
    alive(srv)


def test_hdf5_chunks_whose_size_overflows_are_refused(srv, tmp_path):
    """Found by the `stored_file` fuzz target: a damaged HDF5 file declaring
    chunks of 2^31 × 2^31 × 2^31 items (more than 64 bits can count) made
    the listing's arithmetic overflow (a panic in a debug build, nonsense
    sizes in a release one)."""
    import h5py
    path = tmp_path / "placed" / "public" / "hugechunk.h5"
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as h:
        h.create_dataset("d", shape=(40, 50, 60), chunks=(17, 19, 23), dtype="i4",
                         data=np.ones((40, 50, 60), "i4"))
    raw = bytearray(path.read_bytes())
    # The layout message keeps the chunk's dims, then the item size, as
    # 4-byte little-endian numbers.
    dims = np.array([17, 19, 23, 4], "<u4").tobytes()
    assert raw.count(dims) == 1
    at = raw.index(dims)
    raw[at:at + 12] = np.array([2**31] * 3, "<u4").tobytes()
    path.write_bytes(bytes(raw))
    srv.place(tmp_path / "placed")
    http = srv.http(timeout=20)
    for url, params in [("/api/info/@public/hugechunk.h5/d", {}),
                        ("/api/fetch/@public/hugechunk.h5/d", {"slice_": "0,0,0:4"}),
                        ("/api/chunk/@public/hugechunk.h5/d", {"nchunk": 0})]:
        r = http.get(url, params=params)
        assert r.status_code < 500, (url, r.status_code, detail(r))
    r = http.get("/api/list/@public/hugechunk.h5")
    assert r.status_code < 500, detail(r)
    assert srv.errors == [], srv.errors
    alive(srv)
