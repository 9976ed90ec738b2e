"""The table of the side-by-side benchmark, on the terminal and in bench/RESULTS.md, with
the date and the machine, because a figure without its machine cannot be compared.

Values are floats in base units (seconds, per second, bytes) or, for a workload a server
could not do or did wrong, the string that says why.
"""

import datetime
import os
import platform
import subprocess
from importlib import metadata

# How each kind of row is shown, and whether more is better.
KINDS = {"time": False, "rate": True, "bps": True, "bytes": False}


class Row:
    def __init__(self, key, label, kind, ceiling_label=""):
        self.key, self.label, self.kind, self.ceiling_label = key, label, kind, ceiling_label


def fmt(value, kind):
    if not isinstance(value, float):
        return "—" if value is None else str(value)
    if kind == "time":
        if value < 1e-3:
            return f"{value * 1e6:.0f} µs"
        return f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.2f} s"
    if kind == "rate":
        return f"{value:,.0f}/s"
    if kind == "bps":
        return f"{value / 1e9:.2f} GB/s" if value >= 1e8 else f"{value / 1e6:.1f} MB/s"
    return f"{value / 1e6:.1f} MB"


def times_better(worse, better, kind):
    """How many times `better` beats `worse` (> 1 when it does), or None."""
    if not (isinstance(worse, float) and isinstance(better, float)) or min(worse, better) <= 0:
        return None
    return better / worse if KINDS[kind] else worse / better


def table(rows, results, ceilings):
    """Markdown lines: workload, reference, cat2rs, reference / cat2rs, ceiling, cat2rs / ceiling."""
    lines = ["| workload | reference | cat2rs | reference / cat2rs | ceiling | cat2rs / ceiling |",
             "|---|--:|--:|--:|--:|--:|"]
    for row in rows:
        ref, ours = results["reference"].get(row.key), results["cat2rs"].get(row.key)
        ceiling = ceilings.get(row.key)
        speedup = times_better(ref, ours, row.kind)
        to_ceiling = times_better(ours, ceiling, row.kind)
        ceiling_text = f"{fmt(ceiling, row.kind)} ({row.ceiling_label})" if isinstance(ceiling, float) else "—"
        lines.append(f"| {row.label} | {fmt(ref, row.kind)} | {fmt(ours, row.kind)} | "
                     f"{'—' if speedup is None else f'{speedup:.1f}×'} | {ceiling_text} | "
                     f"{'—' if to_ceiling is None else f'{to_ceiling:.2f}×'} |")
    return lines


def _lscpu(field):
    out = _output(["lscpu"])
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith(field + ":")), "?")


def machine():
    """One line: CPU model, cores, RAM, kernel, load average at the start."""
    mem = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:")), 0)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"{_lscpu('Model name')}, {_lscpu('CPU(s)')} CPUs ({_lscpu('Core(s) per socket')} cores per socket), "
            f"{mem / 2**20:.1f} GiB RAM, Linux {platform.release()}; load average {load} at the start")


def versions(repo, binary):
    """One line: the cat2rs binary (version, path, build time), the tree's commit, the Python side."""
    pkgs = ", ".join(f"{p} {metadata.version(p)}" for p in ("caterva2", "blosc2", "h5py", "hdf5plugin", "numpy"))
    version = _output([binary, "--version"])
    built = datetime.datetime.fromtimestamp(os.path.getmtime(binary)).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    commit = _output(["git", "-C", str(repo), "describe", "--always", "--dirty"])
    return (f"{version} (`{binary}`, built {built}), repository at {commit}; "
            f"Python {platform.python_version()}, {pkgs}")


def _output(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def now():
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


# Sections of bench/RESULTS.md that other benchmarks keep (bench/cluster.py's): a new
# side-by-side run replaces everything above the first of them and keeps them.
KEPT_SECTIONS = "\n## Replicas"


def write_results(path, title, preamble, lines, notes):
    """bench/RESULTS.md: title, preamble (date, machine, data), the table, then the notes,
    and the sections of other benchmarks that were there."""
    text = [f"# {title}", "", *preamble, "", *lines, "", *notes, ""]
    old = path.read_text() if path.exists() else ""
    kept = old[old.index(KEPT_SECTIONS) + 1:] if KEPT_SECTIONS in old else ""
    path.write_text("\n".join(text) + ("\n" + kept if kept else ""))
