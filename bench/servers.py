"""Set-up shared by the benchmarks: detector-like data, free ports, starting a server
(cat2rs or the reference) and giving it the benchmark user."""

import contextlib
import io
import socket
import subprocess
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


def start(cmd, port, env):
    """Starts a server and waits until it answers."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/roots", timeout=0.5).status_code < 500:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start: {cmd}")


def add_user(name, binary, state):
    """The benchmark's superuser, in `state` of server `name` ("cat2rs" or the reference)."""
    if name == "cat2rs":
        subprocess.run([binary, "adduser", USER, PASSWORD, "--superuser", "--statedir", str(state)],
                       check=True, stdout=subprocess.DEVNULL)
    else:
        from caterva2.services import srv_utils
        with contextlib.redirect_stdout(io.StringIO()):  # it prints the new user's id
            srv_utils.add_user(USER, password=PASSWORD, is_superuser=True, state_dir=state)
