#!/usr/bin/env python3
"""Run caterva2's own test suite (shipped in the installed wheel) against cat2rs.

The tests are run unchanged; the plugin pylib/cat2rs_swap.py only swaps the server
process that the harness starts (see its docstring).  Two modes:

* ``login``:   CATERVA2_SECRET set, the harness uses caterva2-server-login.toml;
* ``nologin``: CATERVA2_SECRET unset, caterva2-server-nologin.toml.

Run it with the conformance venv's python (conformance/setup-venv.sh makes it).
The server is chosen by CAT2RS_BIN (or --bin): default <repo>/target/debug/cat2rs,
``reference`` for the reference Python server.

Each mode runs in conformance/.work/upstream-<mode>/ (the harness writes
_caterva2_tests/ into its CWD and needs port 8000).  Per-test outcomes come from
the JUnit XML; a table per test file and mode is printed and written to
conformance/SUMMARY.md.  --check compares with conformance/expected-pass/<mode>.txt,
--update-expected rewrites those files from this run.
"""

import argparse
import collections
import datetime
import json
import os
import pathlib
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
PYLIB = HERE / "pylib"
WORK = HERE / ".work"
EXPECTED = HERE / "expected-pass"
SUMMARY = HERE / "SUMMARY.md"
MODES = ("login", "nologin")
DESELECT_K = "not test_loadfromurl"  # needs internet
SECRET = "cat2rs-conformance-secret"
PORT = 8000
PORT_WAIT_SECS = 300
OUTCOMES = ("passed", "failed", "skipped", "error")
RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}

sys.path.insert(0, str(PYLIB))
import cat2rs_launch  # noqa: E402


def port_in_use(port):
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                if s.connect_ex((host, port)) == 0:
                    return True
        except OSError:
            pass
    return False


def tests_dir():
    import caterva2.tests

    return pathlib.Path(caterva2.tests.__file__).resolve().parent


class Run:
    def __init__(self, mode):
        self.mode = mode
        self.results = {}  # nodeid -> outcome
        self.wall = None
        self.returncode = None
        self.timed_out = False
        self.note = ""


def run_mode(mode, args, spec):
    run = Run(mode)
    scratch = WORK / f"upstream-{mode}"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    junit = scratch / "junit.xml"
    incremental = scratch / "outcomes.tsv"
    log = scratch / "pytest.log"

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PYLIB)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["CAT2RS_BIN"] = spec
    env["CAT2RS_SWAP_RESULTS"] = str(incremental)
    env["CAT2RS_SWAP_LOG"] = str(scratch / "swap.log")
    env["PYTHONUNBUFFERED"] = "1"
    if mode == "login":
        env["CATERVA2_SECRET"] = SECRET
    else:
        env.pop("CATERVA2_SECRET", None)

    # Another run (or a server someone left behind) may hold the port for a
    # while: wait for it rather than failing at once.
    waited = 0
    while port_in_use(PORT) and waited < PORT_WAIT_SECS:
        time.sleep(5)
        waited += 5
    if port_in_use(PORT):
        run.note = f"port {PORT} is already in use; not run"
        run.returncode = -1
        print(f"run-upstream: [{mode}] {run.note}", file=sys.stderr)
        return run

    cmd = [
        sys.executable, "-m", "pytest",
        "--pyargs", "caterva2.tests",
        f"--rootdir={tests_dir()}",
        "-p", "cat2rs_swap",
        "-p", "no:cacheprovider",
        "-o", "junit_family=xunit1",
        f"--junitxml={junit}",
        "-k", DESELECT_K,
        f"--timeout={args.test_timeout}",
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
        "-rfEs",
        *args.pytest_args,
    ]
    print(f"run-upstream: [{mode}] {' '.join(cmd)}\n  (cwd {scratch}; log {log})", file=sys.stderr)
    t0 = time.monotonic()
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            cmd, cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

        def pump():
            for line in proc.stdout:
                logf.write(line)
                logf.flush()
                if args.verbose:
                    sys.stdout.buffer.write(line)
                    sys.stdout.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            run.returncode = proc.wait(timeout=args.mode_timeout)
        except subprocess.TimeoutExpired:
            run.timed_out = True
            run.note = f"timed out after {args.mode_timeout}s; killed"
            print(f"run-upstream: [{mode}] {run.note}", file=sys.stderr)
            kill_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            run.returncode = proc.poll()
        finally:
            # whatever pytest left behind in its session (servers included) goes too
            kill_group(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait()
            reader.join(timeout=10)
    run.wall = time.monotonic() - t0
    for _ in range(50):
        if not port_in_use(PORT):
            break
        time.sleep(0.1)
    else:
        print(f"run-upstream: [{mode}] WARNING: port {PORT} still answers after the run", file=sys.stderr)

    (scratch / "run.json").write_text(json.dumps({
        "wall": run.wall, "returncode": run.returncode, "timed_out": run.timed_out, "note": run.note,
        "spec": spec}))
    return load_results(run, scratch)


def load_results(run, scratch):
    junit = scratch / "junit.xml"
    incremental = scratch / "outcomes.tsv"
    run.results = parse_junit(junit) if junit.exists() else {}
    if not run.results:
        run.results = parse_incremental(incremental)
        if run.results:
            run.note = (run.note + "; " if run.note else "") + "outcomes from the incremental log (no JUnit XML)"
    return run


def reuse_mode(mode):
    """The outcome of the last run of *mode*, read back from its scratch directory."""
    run = Run(mode)
    scratch = WORK / f"upstream-{mode}"
    try:
        meta = json.loads((scratch / "run.json").read_text())
    except (OSError, ValueError):
        run.note = "no earlier run found"
        return run, None
    run.wall, run.returncode, run.timed_out, run.note = (meta["wall"], meta["returncode"], meta["timed_out"],
                                                         meta["note"])
    return load_results(run, scratch), meta.get("spec")


def kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def nodeid_from_case(case):
    name = case.get("name")
    file = case.get("file")
    classname = case.get("classname", "")
    parts = classname.split(".")
    if file:
        fname = pathlib.PurePosixPath(file).name
        stem = fname[:-3] if fname.endswith(".py") else fname
        cls = parts[parts.index(stem) + 1:] if stem in parts else []
    else:
        # classname "caterva2.tests.test_api" or "...test_api.TestX"
        idx = max((i for i, p in enumerate(parts) if p.startswith("test_")), default=len(parts) - 1)
        fname = parts[idx] + ".py"
        cls = parts[idx + 1:]
    return "::".join([fname, *cls, name])


def parse_junit(path):
    results = {}
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return {}
    for case in root.iter("testcase"):
        nodeid = nodeid_from_case(case)
        if case.find("error") is not None:
            outcome = "error"
        elif case.find("failure") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        prev = results.get(nodeid)
        if prev is None or RANK[outcome] > RANK[prev]:
            results[nodeid] = outcome
    return results


def parse_incremental(path):
    results = {}
    if not path.exists():
        return results
    for line in path.read_text().splitlines():
        try:
            _when, outcome, nodeid = line.split("\t", 2)
        except ValueError:
            continue
        outcome = outcome if outcome in RANK else "error"
        prev = results.get(nodeid)
        if prev is None or RANK[outcome] > RANK[prev]:
            results[nodeid] = outcome
    return results


def per_file(results):
    table = collections.defaultdict(collections.Counter)
    for nodeid, outcome in results.items():
        table[nodeid.split("::", 1)[0]][outcome] += 1
    return table


def render(runs, spec, fmt):
    files = sorted({f for r in runs for f in per_file(r.results)})
    lines = []
    md = fmt == "md"
    if md:
        lines.append("# Upstream caterva2 test suite against the server under test\n")
        lines.append(f"- Server: {cat2rs_launch.describe(spec)}, repo at {repo_head()}")
        lines.append(f"- Suite: caterva2 {caterva2_version()} (`caterva2/tests/`, unchanged), "
                     f"blosc2 {blosc2_version()}, Python {platform.python_version()}")
        lines.append(f"- Deselected: `-k \"{DESELECT_K}\"` (needs internet)")
        lines.append(f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
        lines.append("- Generated by `conformance/run-upstream`; P/F/S/E = passed/failed/skipped/errors\n")
    header = ["test file"]
    for r in runs:
        header += [f"{r.mode} P", "F", "S", "E"]
    rows = []
    totals = {r.mode: collections.Counter() for r in runs}
    for f in files:
        row = [f]
        for r in runs:
            c = per_file(r.results).get(f, collections.Counter())
            totals[r.mode].update(c)
            row += [str(c["passed"]), str(c["failed"]), str(c["skipped"]), str(c["error"])]
        rows.append(row)
    total_row = ["**total**" if md else "TOTAL"]
    for r in runs:
        c = totals[r.mode]
        total_row += [str(c["passed"]), str(c["failed"]), str(c["skipped"]), str(c["error"])]
    rows.append(total_row)
    wall_row = ["wall time" if not md else "*wall time*"]
    for r in runs:
        wall_row += [f"{r.wall:.0f}s" if r.wall is not None else "-", "", "", ""]
    rows.append(wall_row)

    if md:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" + "--:|" * (len(header) - 1))
        for row in rows:
            lines.append("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(x[i]) for x in [header] + rows) for i in range(len(header))]
        fmt_row = lambda row: "  ".join(  # noqa: E731
            x.ljust(widths[i]) if i == 0 else x.rjust(widths[i]) for i, x in enumerate(row))
        lines.append(fmt_row(header))
        lines.append("-" * len(fmt_row(header)))
        for row in rows[:-2]:
            lines.append(fmt_row(row))
        lines.append("-" * len(fmt_row(header)))
        lines.extend(fmt_row(row) for row in rows[-2:])
    for r in runs:
        if r.note:
            lines.append(("\n- " if md else "") + f"{r.mode}: {r.note}")
    if md:
        for r in runs:
            bad = sorted(n for n, o in r.results.items() if o in ("failed", "error"))
            lines.append(f"\n## {r.mode}: not passing ({len(bad)})\n")
            if bad:
                lines.append("<details><summary>list</summary>\n")
                lines.extend(f"- `{n}` ({r.results[n]})" for n in bad)
                lines.append("\n</details>")
    return "\n".join(lines) + "\n"


def repo_head():
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def caterva2_version():
    import caterva2

    return caterva2.__version__


def blosc2_version():
    import blosc2

    return blosc2.__version__


def read_expected(mode):
    path = EXPECTED / f"{mode}.txt"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def write_expected(run, spec):
    EXPECTED.mkdir(exist_ok=True)
    passed = sorted(n for n, o in run.results.items() if o == "passed")
    path = EXPECTED / f"{run.mode}.txt"
    header = [
        f"# Upstream caterva2 tests that must pass in {run.mode} mode (run-upstream --check).",
        f"# Written by run-upstream --update-expected from a run against {cat2rs_launch.describe(spec)}"
        f" (repo at {repo_head()})",
        f"# on {datetime.date.today().isoformat()}: {len(passed)} tests.  One pytest node id per line.",
    ]
    path.write_text("\n".join(header + passed) + "\n")
    print(f"run-upstream: wrote {path} ({len(passed)} tests)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=(*MODES, "both"), default="both")
    ap.add_argument("--bin", help="server: a cat2rs binary path or 'reference' (default: $CAT2RS_BIN or "
                    "target/debug/cat2rs)")
    ap.add_argument("--check", action="store_true", help="fail unless every test in expected-pass/<mode>.txt passed")
    ap.add_argument("--update-expected", action="store_true", help="rewrite expected-pass/<mode>.txt from this run")
    ap.add_argument("--mode-timeout", type=float, default=float(os.environ.get("CAT2RS_MODE_TIMEOUT", 1500)),
                    help="seconds one mode may take before pytest and its servers are killed (default 1500)")
    ap.add_argument("--test-timeout", type=float, default=180, help="pytest-timeout per test, seconds (default 180)")
    ap.add_argument("--summary", default=str(SUMMARY), help="markdown summary path ('' to skip)")
    ap.add_argument("--reuse", action="store_true",
                    help="do not run pytest: report on the last run's results in .work/ (for --check, "
                         "--update-expected, or a fresh SUMMARY.md)")
    ap.add_argument("-v", "--verbose", action="store_true", help="echo pytest's output (it is always in the log)")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args()

    if args.bin:
        os.environ["CAT2RS_BIN"] = args.bin
    spec = cat2rs_launch.server_spec()
    modes = MODES if args.mode == "both" else (args.mode,)
    runs = []
    if args.reuse:
        for mode in modes:
            run, used = reuse_mode(mode)
            spec = used or spec
            runs.append(run)
    else:
        problem = cat2rs_launch.check_available(spec)
        if problem:
            print(f"run-upstream: {problem}", file=sys.stderr)
            return 2
        print(f"run-upstream: server under test: {cat2rs_launch.describe(spec)}", file=sys.stderr)
        for mode in modes:
            runs.append(run_mode(mode, args, spec))

    print()
    print(render(runs, spec, "text"))
    if args.summary:
        pathlib.Path(args.summary).write_text(render(runs, spec, "md"))
        print(f"run-upstream: wrote {args.summary}", file=sys.stderr)

    if args.update_expected:
        for r in runs:
            if r.timed_out or not r.results:
                print(f"run-upstream: [{r.mode}] incomplete run; expected-pass/{r.mode}.txt left as it was",
                      file=sys.stderr)
            else:
                write_expected(r, spec)

    status = 0
    if args.check:
        for r in runs:
            expected = read_expected(r.mode)
            missing = [n for n in expected if r.results.get(n) != "passed"]
            if missing:
                status = 1
                print(f"\nrun-upstream: [{r.mode}] {len(missing)} of {len(expected)} expected-to-pass tests "
                      "did not pass:", file=sys.stderr)
                for n in missing:
                    print(f"  {n}: {r.results.get(n, 'not run')}", file=sys.stderr)
            else:
                print(f"run-upstream: [{r.mode}] all {len(expected)} expected-to-pass tests passed", file=sys.stderr)
    else:
        for r in runs:
            if r.timed_out or r.returncode not in (0,):
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
