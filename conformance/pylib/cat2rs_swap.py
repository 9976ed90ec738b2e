"""pytest plugin: run caterva2's own test suite against another server binary.

Load it with ``-p cat2rs_swap`` (this directory on PYTHONPATH).  It changes
nothing in the tests or their fixtures.  The only substitution is the server
*process*: every ``subprocess.Popen`` made from a ``caterva2.tests.*`` module
whose argv starts the reference server

    [sys.executable, "-mcaterva2.services.server", *flags]
    [sys.executable, "-m", "caterva2.services.server", *flags]

is started as ``[*server_prefix(), *flags]`` instead (see cat2rs_launch.py;
``CAT2RS_BIN=reference`` keeps the reference server).  The harness fixture in
``caterva2.tests.services`` is the main user; ``test_peers``/``test_providers``
start their own servers the same way and are swapped too.  Other subprocesses
(e.g. the CLI client run by test_cli) are left alone.

It also makes sure no server started this way outlives the session: waits on
such a process are bounded and every one still running at the end is killed.
"""

import os
import signal
import subprocess
import sys
import time
import types

import cat2rs_launch

_real_subprocess = subprocess
_started = []          # Popen objects of swapped server processes
_WAIT_LIMIT = float(os.environ.get("CAT2RS_SWAP_WAIT_LIMIT", "30"))
_SERVER_MODULE = "caterva2.services.server"
_LOG = os.environ.get("CAT2RS_SWAP_LOG")  # pytest captures stderr; this file is not


def _note(msg):
    line = f"[cat2rs_swap] {msg}\n"
    sys.stderr.write(line)
    if _LOG:
        with open(_LOG, "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}")


def _server_flags(args):
    """The flags after the reference server's module, or None if not a server launch."""
    if isinstance(args, (str, bytes)) or not args:
        return None
    args = [os.fspath(a) if not isinstance(a, str) else a for a in args]
    if args[0] != sys.executable and os.path.basename(args[0]) not in ("python", "python3"):
        return None
    if len(args) >= 2 and args[1] == "-m" + _SERVER_MODULE:
        return args[2:]
    if len(args) >= 3 and args[1] == "-m" and args[2] == _SERVER_MODULE:
        return args[3:]
    return None


def _die_with_parent():
    """In the child before exec: get SIGTERM if pytest dies, so a crash leaves no server behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class _ServerPopen(_real_subprocess.Popen):
    """A Popen whose unbounded wait() cannot hang the session on a stuck server."""

    def wait(self, timeout=None):
        if timeout is not None:
            return super().wait(timeout)
        try:
            return super().wait(_WAIT_LIMIT)
        except _real_subprocess.TimeoutExpired:
            _note(f"server pid {self.pid} still running {_WAIT_LIMIT:.0f}s after being asked to stop; killing it")
            self.kill()
            return super().wait()


def _popen(args, *a, **kw):
    flags = _server_flags(args)
    if flags is None:
        return _real_subprocess.Popen(args, *a, **kw)
    new_args = [*cat2rs_launch.server_prefix(), *flags]
    if sys.platform == "linux" and "preexec_fn" not in kw:
        kw["preexec_fn"] = _die_with_parent
    proc = _ServerPopen(new_args, *a, **kw)
    _note(f"started server pid {proc.pid}: {' '.join(map(str, new_args))}")
    _started.append(proc)
    return proc


class _SubprocessView(types.ModuleType):
    """`subprocess` as seen from a test module: the real one with a swapped Popen."""

    def __init__(self):
        super().__init__("subprocess")
        self.Popen = _popen

    def __getattr__(self, name):
        return getattr(_real_subprocess, name)


_view = _SubprocessView()


def _patch_loaded_modules():
    for name, mod in list(sys.modules.items()):
        if (
            mod is not None
            and name.startswith("caterva2.tests")
            and getattr(mod, "subprocess", None) is _real_subprocess
        ):
            mod.subprocess = _view


def pytest_configure(config):
    problem = cat2rs_launch.check_available()
    if problem:
        raise SystemExit(f"cat2rs_swap: {problem}")
    _note(f"server under test: {cat2rs_launch.describe()}")
    _patch_loaded_modules()


def pytest_collection_finish(session):
    # test modules are imported during collection; patch them before any fixture runs
    _patch_loaded_modules()


def pytest_runtest_setup(item):
    _patch_loaded_modules()


def _reap():
    for proc in _started:
        if proc.poll() is None:
            _note(f"killing leftover server pid {proc.pid}")
            try:
                proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 3
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.1)
                if proc.poll() is None:
                    proc.kill()
                _real_subprocess.Popen.wait(proc, 10)
            except (ProcessLookupError, _real_subprocess.TimeoutExpired):
                pass


def pytest_unconfigure(config):
    _reap()


# --- incremental per-test outcome log (survives a killed session) -------------

_RESULTS = os.environ.get("CAT2RS_SWAP_RESULTS")


def pytest_runtest_logreport(report):
    if not _RESULTS:
        return
    if report.when == "call" or report.outcome != "passed":
        outcome = report.outcome
        if report.when != "call" and outcome == "failed":
            outcome = "error"
        with open(_RESULTS, "a") as f:
            f.write(f"{report.when}\t{outcome}\t{report.nodeid}\n")
