"""Session set-up for the cat2rs read-API integration tests.

One server for the whole session: the fixtures (../fixtures/make_fixtures.py) are
written once, copied into a fresh state dir, and `cat2rs serve` is started on a
free loopback port with a login=false configuration.  `CAT2RS_BIN` picks the
server (see ../pylib/cat2rs_launch.py): unset = <repo>/target/debug/cat2rs,
``reference`` = the reference Python server.  `CAT2RS_CLUSTER=DIR` (a cluster that
``scripts/cluster.sh up DIR --nologin`` started) runs the whole suite on clusters:
the tests that use this server against the cluster's balancer, with the fixtures
imported into it by ``cat2rs import``, and the tests that start servers of their own
(loginmode.start_server) each on a cluster of two replicas and a balancer of its own
over the same PostgreSQL and Garage (loginmode.ClusterLoginServer).  Skipped there:
tests marked ``local_state`` (they look at or plant files, links or temporaries in
the state directory itself) and ``direct_connection`` (they test how the server
handles a client's connection, which a balancer holds instead).
`CAT2RS_FIXTURES=DIR` reuses fixtures already written by make_fixtures.py instead of
writing them anew.

Every HTTP response seen by the official client or by the raw `http` client is
checked: a 5xx fails the test that caused it.  If the server process dies, the
test that killed it fails and the server is restarted for the next ones.

Tests marked ``reference_bug`` assert the intended behaviour where the reference
server is known to get it wrong (documented in protocol.md or listed in
README.md); against the reference server they are expected to fail (xfail).
"""

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "pylib"))
sys.path.insert(0, str(HERE.parent / "fixtures"))

import cat2rs_launch  # noqa: E402
import make_fixtures  # noqa: E402

import caterva2 as cat2  # noqa: E402

STARTUP_TIMEOUT = float(os.environ.get("CAT2RS_STARTUP_TIMEOUT", "30"))
CLUSTER = os.environ.get("CAT2RS_CLUSTER")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "reference_bug(reason): the reference server gets this wrong; xfail against it"
    )
    config.addinivalue_line(
        "markers", "local_state: reads the served state directory's files; skipped against a cluster"
    )
    config.addinivalue_line(
        "markers", "direct_connection: about the server's own handling of a client's connection; skipped against "
        "a cluster, where the balancer holds the client's connection"
    )


def pytest_report_header(config):
    if CLUSTER:
        return [f"server under test: the cluster in {CLUSTER}"]
    return [f"server under test: {cat2rs_launch.describe()}"]


def pytest_collection_modifyitems(config, items):
    if CLUSTER:
        local = pytest.mark.skip(reason="reads the state directory's files; a cluster keeps them in object storage")
        direct = pytest.mark.skip(reason="about the server's own connections; a cluster's clients talk to a balancer")
        for item in items:
            if item.get_closest_marker("local_state") is not None:
                item.add_marker(local)
            if item.get_closest_marker("direct_connection") is not None:
                item.add_marker(direct)
    if cat2rs_launch.server_spec() != cat2rs_launch.REFERENCE:
        return
    for item in items:
        mark = item.get_closest_marker("reference_bug")
        if mark is not None:
            reason = mark.args[0] if mark.args else "reference server bug"
            item.add_marker(pytest.mark.xfail(reason=f"reference bug: {reason}", strict=True))


def _die_with_parent():
    """Runs in the child before exec: SIGTERM it if pytest dies (Linux), so no server outlives a crash."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The server process under test and what the tests need to know about it."""

    def __init__(self, workdir, statedir):
        self.workdir = workdir
        self.statedir = statedir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = workdir / "cat2rs-nologin.toml"
        self.conf.write_text(f'[server]\nlogin = false\nregister = false\nurlbase = "{self.url}"\n')
        self.log = workdir / "server.log"
        self.proc = None
        self.restarts = 0
        self.errors = []  # (method, url, status) of every 5xx seen

    def argv(self):
        return [
            *cat2rs_launch.server_prefix(),
            f"--conf={self.conf}",
            f"--statedir={self.statedir}",
            f"--listen=127.0.0.1:{self.port}",
            "--loglevel=warning",
        ]

    def environment(self):
        """The server's environment (no `CATERVA2_SECRET`: this one runs without users)."""
        env = dict(os.environ)
        env.pop("CATERVA2_SECRET", None)
        return env

    def start(self):
        env = self.environment()
        logf = open(self.log, "ab")
        logf.write(f"\n=== starting: {' '.join(self.argv())}\n".encode())
        logf.flush()
        # cwd = workdir: no stray .env or caterva2-server.toml is picked up
        self.proc = subprocess.Popen(self.argv(), cwd=self.workdir, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        logf.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with status {self.proc.returncode} during start-up:\n"
                                   f"{self.log_tail()}")
            try:
                r = httpx.get(f"{self.url}/api/roots", timeout=1)
                if 100 <= r.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer /api/roots within {STARTUP_TIMEOUT}s:\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self, n=40):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # -- helpers for tests

    def local(self, fixture):
        """Path of the fixture's file inside the served state dir."""
        return self.statedir / fixture.stored

    def hook(self, response):
        if response.status_code >= 500:
            self.errors.append((response.request.method, str(response.request.url), response.status_code))


class ClusterServer(Server):
    """The read suite's server when `CAT2RS_CLUSTER` names a cluster: its balancer.

    `start` imports the fixtures (the local state dir, which stays what `local`
    answers: the same bytes) into the cluster's object store with `cat2rs import`.
    The cluster's processes are the cluster script's, not the test's: `stop` leaves
    them running, and the replicas' logs are what `log_tail` shows.
    """

    def __init__(self, workdir, statedir, cluster):
        super().__init__(workdir, statedir)
        self.cluster = pathlib.Path(cluster)
        self.url = (self.cluster / "url").read_text().strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        self.imported = False

    def start(self):
        if not self.imported:
            binary = os.environ.get("CAT2RS_BIN") or str(HERE.parents[1] / "target" / "debug" / "cat2rs")
            subprocess.run([binary, "import", str(self.statedir), "--conf", str(self.cluster / "cat2rs.toml")],
                           check=True, capture_output=True)
            self.imported = True
        httpx.get(f"{self.url}/healthz", timeout=10).raise_for_status()

    def alive(self):
        return True

    def stop(self):
        pass

    def log_tail(self, n=40):
        tails = []
        for log in sorted((self.cluster / "logs").glob("replica-*.log")):
            lines = log.read_text(errors="replace").splitlines()[-n:]
            tails.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(tails)


@pytest.fixture(scope="session")
def fixtures_src(tmp_path_factory):
    prebuilt = os.environ.get("CAT2RS_FIXTURES")
    if prebuilt:
        return pathlib.Path(prebuilt).resolve()
    return make_fixtures.build(tmp_path_factory.mktemp("fixtures-src"))


@pytest.fixture(scope="session")
def server(tmp_path_factory, fixtures_src):
    problem = cat2rs_launch.check_available()
    if problem:
        pytest.exit(f"cannot start the server under test: {problem}", returncode=3)
    workdir = tmp_path_factory.mktemp("server")
    statedir = workdir / "state"
    statedir.mkdir()
    for sub in ("public", "shared"):
        shutil.copytree(fixtures_src / sub, statedir / sub)
    srv = ClusterServer(workdir, statedir, CLUSTER) if CLUSTER else Server(workdir, statedir)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(autouse=True)
def _server_health(request):
    """Restart a server that an earlier test killed (that test has failed already).

    Only for tests that use the read-suite server: the others start their own.
    """
    if "server" not in request.fixturenames:
        return
    server = request.getfixturevalue("server")
    if not server.alive():
        server.restarts += 1
        server.start()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run the test, then fail it if it provoked a 5xx or killed a server.

    Every `Server` among the test's fixture values is checked (the read suite's
    `server`, and the servers that other test modules start themselves).
    Done in the call phase (not in a fixture's teardown) so that it counts as the
    test's own outcome, which `reference_bug` xfails can then absorb.
    """
    servers = []
    for value in pyfuncitem.funcargs.values():
        if isinstance(value, Server) and all(value is not s for s in servers):
            servers.append(value)
    if not servers:
        return None  # pytest's own implementation runs the test
    seen = [len(server.errors) for server in servers]
    argnames = pyfuncitem._fixtureinfo.argnames
    try:
        pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in argnames})
        ended = None
    except pytest.skip.Exception as skipped:  # a test may skip midway (a cluster's `statedir`)
        ended = skipped
    problems = []
    for server, n in zip(servers, seen):
        if len(server.errors) > n:
            problems.append("server answered 5xx: " + "; ".join(f"{m} {u} -> {s}" for m, u, s in server.errors[n:]))
        problems.extend(getattr(server, "tampered", list)())
        if server.proc is not None and not server.alive():
            problems.append(f"server process died (status {server.proc.returncode}):\n{server.log_tail()}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    if ended is not None:
        raise ended
    return True


@pytest.fixture(scope="session")
def client(server):
    c = cat2.Client(server.url)
    c.httpx_client.event_hooks["response"].append(server.hook)
    yield c
    c.close()


@pytest.fixture(scope="session")
def http(server):
    """A raw httpx client on the server (no caterva2 logic in between)."""
    with httpx.Client(base_url=server.url, timeout=30, event_hooks={"response": [server.hook]}) as c:
        yield c
