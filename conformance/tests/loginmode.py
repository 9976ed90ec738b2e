"""Servers with users (``login = true``) for the write/user/auth tests.

`LoginServer` is the read suite's `conftest.Server` started with a login-mode
TOML, `CATERVA2_SECRET` set and a fresh state dir of its own; because it is a
`Server`, conftest's call hook fails a test that provoked a 5xx from it or
killed it.  Users are made the way the upstream harness makes them: the
reference package's own ``srv_utils.add_user`` writes them straight into
``<statedir>/db.sqlite`` while the server runs.

`CAT2RS_BIN=reference` runs these tests against the reference server too, to
check the tests themselves; tests of cat2rs-only behaviour are skipped there
(`cat2rs_only`).
"""

import os
import pathlib
import re
import signal
import socket
import sqlite3
import time

import httpx
import pytest

import cat2rs_launch
import caterva2 as cat2
from conftest import Server

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
    srv = LoginServer(workdir, **kw)
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
        for piece in self._pieces:
            self.sock.sendall(piece)
            self.sent += len(piece)
            if upto is not None and self.sent >= upto:
                return

    def response_status(self, timeout):
        """The status line's code, or None when nothing (complete) came back in *timeout* s."""
        self.sock.settimeout(timeout)
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

