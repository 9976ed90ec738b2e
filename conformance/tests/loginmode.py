"""Servers with users (``login = true``) for the write/user/auth tests.

`LoginServer` is the read suite's `conftest.Server` started with a login-mode
TOML, `CATERVA2_SECRET` set and a fresh state dir of its own; because it is a
`Server`, conftest's call hook fails a test that provoked a 5xx from it or
killed it.  Users are made the way the upstream harness makes them: the
reference package's own ``srv_utils.add_user`` writes them straight into
``<statedir>/db.sqlite`` while the server runs.

`CAT2RS_BIN=reference` runs these tests against the reference server too, to
check the tests themselves; tests of cat2rs-only behaviour are skipped there
(`cat2rs_only`).  With `CAT2RS_CLUSTER` set, `start_server` starts a
`ClusterLoginServer` instead: the same tests on replicas over object storage and
PostgreSQL.  Files a test puts into the state behind the server's back go through
`srv.place(tree)`, which works on both.
"""

import itertools
import os
import pathlib
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.parse

import httpx
import pytest

import cat2rs_launch
import caterva2 as cat2
from conftest import CLUSTER, STARTUP_TIMEOUT, Server, _die_with_parent, _free_port

SECRET = "cat2rs-conformance-secret"

IS_REFERENCE = cat2rs_launch.server_spec() == cat2rs_launch.REFERENCE

cat2rs_only = pytest.mark.skipif(IS_REFERENCE, reason="cat2rs-only behaviour (the reference server differs here)")


def cat2rs_bug(reason):
    """A known cat2rs bug: strict xfail against cat2rs (the reference server passes these tests)."""
    return pytest.mark.xfail(not IS_REFERENCE, reason=f"cat2rs bug: {reason}", strict=True)

# fastapi-users' password policy, and the temporary-name prefix of cat2rs writes
MIN_PASSWORD = 8
TEMP_PREFIX = ".cat2rs-tmp-"


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


class LoginServer(Server):
    """A server with users on a free loopback port and its own state dir.

    *settings* are extra ``[server]`` keys (``maxusers``, ``quota``,
    ``public_writes``...).  *spec* picks the program as `CAT2RS_BIN` does
    (``"reference"`` or a binary path); by default `CAT2RS_BIN` decides.
    """

    def __init__(self, workdir, statedir=None, *, settings=None, spec=None, secret=SECRET, name="login"):
        workdir = pathlib.Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        statedir = pathlib.Path(statedir) if statedir else workdir / "state"
        statedir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir, statedir)
        self.spec = cat2rs_launch.server_spec() if spec is None else spec
        self.secret = secret
        self.settings = {"login": True, "register": True, "urlbase": f"http://localhost:{self.port}"}
        self.settings.update(settings or {})
        self.conf = workdir / f"{name}.toml"
        lines = ["[server]"] + [f"{k} = {toml_value(v)}" for k, v in self.settings.items() if v is not None]
        self.conf.write_text("\n".join(lines) + "\n")
        self.log = workdir / f"{name}.log"
        self._clients = []

    def argv(self):
        return [
            *cat2rs_launch.server_prefix(self.spec),
            f"--conf={self.conf}",
            f"--statedir={self.statedir}",
            f"--listen=127.0.0.1:{self.port}",
            "--loglevel=warning",
        ]

    def environment(self):
        env = dict(os.environ)
        env["CATERVA2_SECRET"] = self.secret
        env["PYTHONUNBUFFERED"] = "1"  # the reference server prints reset e-mails to stdout
        return env

    def kill9(self):
        """SIGKILL the server (no clean-up of any kind) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def close(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        self._clients.clear()
        try:
            self.stop()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    # -- users

    def add_user(self, email, password, superuser=False):
        """The reference harness's way: `srv_utils.add_user` writes db.sqlite under the running server."""
        from caterva2.services import srv_utils

        srv_utils.add_user(email, password=password, is_superuser=superuser, state_dir=self.statedir)

    def db_users(self):
        """{email: row} straight from db.sqlite."""
        with sqlite3.connect(self.statedir / "db.sqlite") as db:
            db.row_factory = sqlite3.Row
            return {r["email"]: dict(r) for r in db.execute("SELECT * FROM user")}

    def user_id(self, email):
        return self.db_users()[email]["id"]

    def personal_dir(self, email):
        return self.statedir / "personal" / self.user_id(email)

    # -- clients

    def client(self, auth=None, timeout=30, keepalive=True):
        """The official client, its responses checked for 5xx.

        ``keepalive=False`` sends ``Connection: close`` on every request, so no
        connection is reused: for tests about something else than a server's
        handling of keep-alive after refusing a request it did not read
        (see test_users_writes.py::test_refused_upload_leaves_the_connection_usable).
        """
        c = cat2.Client(self.url, auth, timeout=timeout)
        c.httpx_client.event_hooks["response"].append(self.hook)
        if not keepalive:
            c.httpx_client.headers["Connection"] = "close"
        self._clients.append(c)
        return c

    def http(self, cookie=None, keepalive=True, **kw):
        """A raw httpx client (a cookie jar of its own), responses checked for 5xx."""
        headers = {"Cookie": cookie} if cookie else {}
        if not keepalive:
            headers["Connection"] = "close"
        c = httpx.Client(base_url=self.url, timeout=kw.pop("timeout", 30), headers=headers,
                         event_hooks={"response": [self.hook]}, **kw)
        self._clients.append(c)
        return c

    def place(self, tree):
        """Copies the files of *tree* (laid out as a state dir: ``public/...``) into the state,
        behind the server's back, as someone with access to its storage would."""
        shutil.copytree(tree, self.statedir, symlinks=True, dirs_exist_ok=True)

    def login_cookie(self, email, password):
        r = httpx.post(f"{self.url}/auth/jwt/login", data={"username": email, "password": password}, timeout=30)
        self.hook(r)
        assert r.status_code == 204, (r.status_code, r.text)
        return r.headers["set-cookie"].split(";")[0]

    def wait_log(self, pattern, timeout=10.0, start=0):
        """The first match of *pattern* in the server log after byte *start*, waiting for it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log.read_bytes()[start:].decode(errors="replace")
            m = rx.search(text)
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.1)

    def log_size(self):
        try:
            return self.log.stat().st_size
        except OSError:
            return 0


def start_server(workdir, **kw):
    problem = cat2rs_launch.check_available(kw.get("spec"))
    if problem:
        pytest.skip(f"cannot start the server: {problem}")
    spec = kw.get("spec")
    own = (spec if spec is not None else cat2rs_launch.server_spec()) != cat2rs_launch.REFERENCE
    srv = (ClusterLoginServer if CLUSTER and own else LoginServer)(workdir, **kw)
    try:
        srv.start()
    except Exception:
        srv.close()
        raise
    return srv


def status_of(excinfo):
    """HTTP status carried by an exception from the official client."""
    e = excinfo.value
    return e.response.status_code if isinstance(e, httpx.HTTPStatusError) else None


def detail_of(excinfo):
    e = excinfo.value
    try:
        return e.response.json().get("detail")
    except Exception:
        return e.response.text


def multipart_stream(boundary, filename, chunks):
    """The pieces of a one-part (`file`) multipart body around *chunks*."""
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    yield from chunks
    yield f"\r\n--{boundary}--\r\n".encode()


class RawUpload:
    """An upload sent by hand over a socket, so a test can stop midway.

    The declared Content-Length is that of the whole body; `send(n)` pushes
    body bytes until at least *n* have gone (or all of them).
    """

    BOUNDARY = "cat2rsconformanceBOUNDARY7f3a"

    def __init__(self, server, path, cookie, data_size, block, filename="big.bin"):
        self.server = server
        self.data_size = data_size
        self.block = block
        pre_len = len(next(multipart_stream(self.BOUNDARY, filename, [])))
        post_len = len(f"\r\n--{self.BOUNDARY}--\r\n")
        self.total = pre_len + data_size + post_len
        self.sent = 0
        self._pieces = multipart_stream(self.BOUNDARY, filename, self._data())
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        head = (f"POST /api/upload/{path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nCookie: {cookie}\r\n"
                f"Content-Type: multipart/form-data; boundary={self.BOUNDARY}\r\n"
                f"Content-Length: {self.total}\r\n\r\n").encode()
        self.sock.sendall(head)

    def _data(self):
        left, i = self.data_size, 0
        while left > 0:
            # a counter in front of every block: no two blocks alike, nothing kept in memory
            piece = i.to_bytes(8, "little") + self.block[8:]
            piece = piece[:left]
            left -= len(piece)
            i += 1
            yield piece

    def send(self, upto=None):
        getattr(self.server, "touched", lambda: None)()
        for piece in self._pieces:
            self.sock.sendall(piece)
            self.sent += len(piece)
            if upto is not None and self.sent >= upto:
                return

    def response_status(self, timeout):
        """The status line's code, or None when nothing (complete) came back in *timeout* s."""
        self.sock.settimeout(timeout)
        getattr(self.server, "touched", lambda: None)()
        try:
            data = self.sock.recv(4096)
        except (socket.timeout, OSError):
            return None
        m = re.match(rb"HTTP/1\.1 (\d{3})", data)
        return int(m.group(1)) if m else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def start_reference(workdir, statedir, settings=None, secret=SECRET):
    """The reference Python server on *statedir* (always the reference, whatever CAT2RS_BIN says)."""
    return start_server(workdir, statedir=statedir, settings=settings, spec=cat2rs_launch.REFERENCE, secret=secret,
                        name="reference")



def _cluster_env():
    """The `KEY=value` lines of the cluster's DIR/env (its database and S3 endpoint)."""
    env = {}
    for line in (pathlib.Path(CLUSTER) / "env").read_text().splitlines():
        key, _, value = line.partition("=")
        if key:
            env[key] = value[1:-1] if value[:1] == value[-1:] == "'" else value  # shell-quoted
    return env


class ClusterLoginServer(LoginServer):
    """`LoginServer` as a cluster: two replicas and a balancer on the cluster's PostgreSQL and Garage.

    Used by `start_server` when `CAT2RS_CLUSTER` names a cluster.  Each server gets
    a database and an object-store prefix of its own, so the tests see the fresh
    state they expect; a state dir handed in already filled is copied in with
    `cat2rs import` at the first start.  The balancer alternates the replicas
    (round robin), so consecutive requests of a test cross replicas: a write
    through one is read back through the other.  Both replicas log into one file
    (`wait_log` sees either).  Users are added with `cat2rs adduser --conf` and
    read from PostgreSQL.  Once the server runs, its state dir is not where the
    data is: a test that looks at it is skipped at that point (`statedir`).
    """

    REPLICAS = 2
    _serial = itertools.count(1)

    def __init__(self, workdir, statedir=None, **kw):
        self.imported = False
        self._stale = True
        self._snapshot_of = None
        self._manifest = None
        self._tampered = []
        self._synced = {}  # relative path: data object (None: a directory)
        self._s3 = None
        self._db = None
        super().__init__(workdir, statedir, **kw)
        self.cluster_env = _cluster_env()
        self.name = f"login_{os.getpid()}_{next(self._serial)}"
        self.snapshot = self.workdir / f"{self.name}-state"
        admin_url = urllib.parse.urlsplit(self.cluster_env["CAT2RS_TEST_DATABASE_URL"])
        database_url = urllib.parse.urlunsplit(admin_url._replace(path="/" + self.name))
        self.database_url = database_url
        self.replica_ports = [_free_port() for _ in range(self.REPLICAS)]
        self.procs = []
        self.haproxy = None
        env = self.cluster_env
        self.conf.write_text(self.conf.read_text().replace(
            "[server]\n", f"[server]\nstatedir = {toml_value(str(self.workdir / 'admin'))}\n", 1) + "\n".join([
                "[storage]",
                f"url = {toml_value('s3://' + env['CAT2RS_TEST_S3_BUCKET'] + '/' + self.name)}",
                f"endpoint = {toml_value(env['CAT2RS_TEST_S3_ENDPOINT'])}",
                f"region = {toml_value(env['CAT2RS_TEST_S3_REGION'])}",
                f"access_key_id = {toml_value(env['CAT2RS_TEST_S3_KEY_ID'])}",
                f"secret_access_key = {toml_value(env['CAT2RS_TEST_S3_SECRET'])}",
                "[database]",
                f"url = {toml_value(database_url)}",
            ]) + "\n")
        self.haproxy_cfg = self.workdir / f"{self.name}.haproxy.cfg"
        self.haproxy_cfg.write_text("\n".join([
            "defaults",
            "    mode http",
            "    option abortonclose",
            "    timeout connect 2s",
            "    timeout client 600s",
            "    timeout server 600s",
            "frontend cat2rs",
            f"    bind 127.0.0.1:{self.port}",
            "    default_backend replicas",
            "backend replicas",
            "    balance roundrobin",
            *[f"    server replica-{i + 1} 127.0.0.1:{p}" for i, p in enumerate(self.replica_ports)],
        ]) + "\n")

    @property
    def statedir(self):
        """Before the first start, the state dir to import; then a snapshot of the cluster's state.

        The snapshot is the catalog's tree with each object's bytes fetched
        from the bucket, in one directory, made when first asked for and
        brought up to date after every answer that changed the catalog
        (`hook`; only changed objects are fetched again), so paths a test
        keeps show what the replicas have committed.  Files a test writes
        into it reach no replica: `tampered` reports that.
        """
        if not self.imported:
            return self._statedir
        if self._stale or self._manifest is None:
            self._snapshot_of = self.fingerprint()
            self._take_snapshot()
        return self.snapshot

    @statedir.setter
    def statedir(self, value):
        self._statedir = value

    def _bucket(self):
        if self._s3 is None:
            import boto3

            env = self.cluster_env
            self._s3 = boto3.client("s3", endpoint_url=env["CAT2RS_TEST_S3_ENDPOINT"],
                                    region_name=env["CAT2RS_TEST_S3_REGION"],
                                    aws_access_key_id=env["CAT2RS_TEST_S3_KEY_ID"],
                                    aws_secret_access_key=env["CAT2RS_TEST_S3_SECRET"])
        return self._s3

    def _take_snapshot(self):
        self._check_untouched()
        rows = {r["path"]: r for r in self.query("SELECT path, is_dir, object, modified FROM cat2_entries")}
        self.snapshot.mkdir(exist_ok=True)
        # What is gone, or is now of another kind or version, goes first (deepest first).
        for rel in sorted(self._synced, key=lambda r: -r.count("/")):
            row = rows.get(rel)
            if row is None or row["object"] != self._synced[rel]:
                target = self.snapshot / rel
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
                del self._synced[rel]
        for rel in sorted(rows):
            row = rows[rel]
            target = self.snapshot / rel
            if row["is_dir"]:
                target.mkdir(parents=True, exist_ok=True)
                self._synced[rel] = None
            elif rel not in self._synced:
                target.parent.mkdir(parents=True, exist_ok=True)
                key = f"{self.name}/{row['object']}"
                self._bucket().download_file(self.cluster_env["CAT2RS_TEST_S3_BUCKET"], key, str(target))
                self._synced[rel] = row["object"]
            stamp = row["modified"].timestamp()
            os.utime(target, (stamp, stamp))
        self._manifest = self._scan()
        self._stale = False

    def _scan(self):
        """{relative path: (kind, size, mtime)} of the snapshot."""
        found = {}
        for path in [self.snapshot, *self.snapshot.rglob("*")]:
            st = path.lstat()
            found[str(path.relative_to(self.snapshot))] = (st.st_mode >> 12, st.st_size, st.st_mtime_ns)
        return found

    def _check_untouched(self):
        """A test that changed the snapshot meant to change the server's state: say so (`tampered`)."""
        if self._manifest is None:
            return
        now = self._scan()
        if now != self._manifest:
            changed = sorted(set(now.items()) ^ set(self._manifest.items()))
            self._tampered.append(f"the test wrote into the state dir behind the server's back "
                                  f"({changed[0][0]}...), which on a cluster reaches no replica: "
                                  "put files in with `srv.place(tree)`, or mark the test `local_state`")
            self._manifest = now

    def tampered(self):
        """What `_check_untouched` found since the last call (conftest fails the test with it)."""
        self._check_untouched()
        found, self._tampered = self._tampered, []
        return found

    def place(self, tree):
        """Copies the files of *tree* (laid out as a state dir) into the cluster: `cat2rs import`."""
        self.admin("import", str(tree))
        self.touched()

    def hook(self, response):
        super().hook(response)
        self.touched()  # some writes are GETs (/api/deluser)

    def touched(self):
        """The state may have changed: a snapshot a test has looked at is taken again if it did."""
        self._stale = True
        if self.imported and self._manifest is not None:
            seen = self.fingerprint()
            if seen != self._snapshot_of:
                self._take_snapshot()
                self._snapshot_of = seen
            self._stale = False

    def binary(self):
        return cat2rs_launch.server_prefix(self.spec)[0]

    def admin(self, *args):
        return subprocess.run([self.binary(), *args, "--conf", str(self.conf)], capture_output=True, text=True,
                              env=self.environment(), check=True)

    def query(self, sql):
        """Rows (dicts) of *sql* on this server's database, over one connection kept open."""
        import psycopg
        from psycopg.rows import dict_row

        if self._db is None:
            self._db = psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row)
        return self._db.execute(sql).fetchall()

    def fingerprint(self):
        """A digest of the catalog and the users: equal digests, equal state."""
        row = self.query(
            "SELECT (SELECT md5(coalesce(string_agg(e::text, ',' ORDER BY path), '')) FROM cat2_entries e) AS data, "
            "(SELECT md5(coalesce(string_agg(u::text, ',' ORDER BY id), '')) FROM \"user\" u) AS users")[0]
        return (row["data"], row["users"])

    def start(self):
        if not self.imported:
            import psycopg

            with psycopg.connect(self.cluster_env["CAT2RS_TEST_DATABASE_URL"], autocommit=True) as db:
                db.execute(f'CREATE DATABASE "{self.name}"')
            (self.workdir / "admin").mkdir(exist_ok=True)
            if any(self._statedir.iterdir()):
                self.admin("import", str(self._statedir))
            self.imported = True
        self._stale = True
        logf = open(self.log, "ab")
        self.procs = []
        for i, port in enumerate(self.replica_ports):
            spool = self.workdir / f"{self.name}-replica-{i + 1}"
            spool.mkdir(exist_ok=True)
            argv = [*cat2rs_launch.server_prefix(self.spec), f"--conf={self.conf}", f"--statedir={spool}",
                    f"--listen=127.0.0.1:{port}", "--loglevel=warning"]
            self.procs.append(subprocess.Popen(argv, cwd=self.workdir, env=self.environment(), stdout=logf,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               preexec_fn=_die_with_parent))
        if self.haproxy is None or self.haproxy.poll() is not None:
            self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(self.haproxy_cfg)], stdout=logf,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            preexec_fn=_die_with_parent)
        logf.close()
        self.proc = self.procs[0]
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for proc, port in zip(self.procs, self.replica_ports):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"replica exited with status {proc.returncode} during start-up:\n"
                                       f"{self.log_tail()}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"replica on port {port} not ready within {STARTUP_TIMEOUT}s:\n"
                                       f"{self.log_tail()}")
                time.sleep(0.1)
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the balancer did not answer")
            time.sleep(0.05)

    def alive(self):
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def _end(self, proc, sig):
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self):
        for proc in self.procs:
            self._end(proc, signal.SIGTERM)
        self.procs = []
        self.proc = None

    def kill9(self):
        for proc in self.procs:
            self._end(proc, signal.SIGKILL)
        self._stale = True

    def close(self):
        super().close()
        if self._db is not None:
            self._db.close()
            self._db = None
        if self.haproxy is not None:
            self._end(self.haproxy, signal.SIGTERM)
            self.haproxy = None

    def add_user(self, email, password, superuser=False):
        self.admin("adduser", *(["--superuser"] if superuser else []), email, password)

    def db_users(self):
        return {row["email"]: {**row, "id": str(row["id"])} for row in self.query('SELECT * FROM "user"')}
