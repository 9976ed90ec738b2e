"""Set-up shared by the benchmarks: detector-like data, free ports, starting a server
(cat2rs or the reference) with login on and the benchmark user, and logging in."""

import contextlib
import io
import os
import socket
import subprocess
import sys
import time

import httpx
import numpy as np

USER, PASSWORD = "bench@example.com", "bench-password-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_frames(nframes, size):
    """uint16 frames of Poisson noise with a few bright Bragg-like spots (fixed seed)."""
    rng = np.random.default_rng(0)
    frames = rng.poisson(2.0, size=(nframes, size, size)).astype(np.uint16)
    for f in frames:
        ys, xs = rng.integers(0, size, 50), rng.integers(0, size, 50)
        f[ys, xs] = rng.integers(1000, 60000, 50)
    return frames


def _die_with_parent():
    """Runs in the child before exec: SIGTERM it if the benchmark dies (Linux), so no server outlives it."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start(cmd, port, env=None, cwd=None):
    """Starts a server and waits until it answers."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=_die_with_parent)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/roots", timeout=0.5).status_code < 500:
                return proc
        except httpx.HTTPError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start: {cmd}")


def command(name, binary):
    """The command line that serves with server `name` ("cat2rs" or "reference")."""
    if name == "cat2rs":
        return [os.path.abspath(binary), "serve"]
    return [sys.executable, "-m", "caterva2.services.server"]


def add_user(name, binary, state):
    """The benchmark's superuser, in `state` of server `name` ("cat2rs" or the reference)."""
    if name == "cat2rs":
        subprocess.run([binary, "adduser", USER, PASSWORD, "--superuser", "--statedir", str(state)],
                       check=True, stdout=subprocess.DEVNULL)
    else:
        from caterva2.services import srv_utils
        with contextlib.redirect_stdout(io.StringIO()):  # it prints the new user's id
            srv_utils.add_user(USER, password=PASSWORD, is_superuser=True, state_dir=state)


class Server:
    """A running server: its name, base URL and process."""

    def __init__(self, name, url, proc):
        self.name, self.url, self.proc = name, url, proc

    def cookie(self):
        """The session cookie header value (`c2subauth=…`) of the benchmark user."""
        r = httpx.post(f"{self.url}/auth/jwt/login", data={"username": USER, "password": PASSWORD})
        r.raise_for_status()
        return r.headers["set-cookie"].split(";")[0]


@contextlib.contextmanager
def running(name, binary, state, workdir):
    """Serves `state` with server `name` on a free loopback port, login on, with the
    benchmark user added; `workdir` holds the configuration and is the working directory."""
    state.mkdir(parents=True, exist_ok=True)
    conf = workdir / "server.toml"
    conf.write_text("[server]\nlogin = true\n")
    add_user(name, binary, state)
    env = dict(os.environ, CATERVA2_SECRET="bench-secret")
    port = free_port()
    cmd = command(name, binary) + [f"--conf={conf}", f"--statedir={state}", f"--listen=127.0.0.1:{port}"]
    proc = start(cmd, port, env, cwd=workdir)
    try:
        yield Server(name, f"http://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        proc.wait()
