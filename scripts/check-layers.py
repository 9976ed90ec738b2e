#!/usr/bin/env python3
"""Checks that no files of a crate import each other in a circle, and that the
server's data is touched with the file system only by the local storage backend.

Usage: scripts/check-layers.py [CRATE_SRC_DIR ...]   (default: crates/cat2-core/src)

Every `.rs` file is a node; it depends on the files whose items it names:
`use crate::a::b`, `crate::a::b::f()` in code, `super::x`, and a module's own
children named as `child::...` (a re-export `pub use child::X` counts: the
parent then depends on the child). Declaring a child (`mod child;`) does not.
A cycle (a strongly connected set of more than one file) is printed and the
exit status is 1. Comments and string literals are ignored.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def module_of(src: pathlib.Path, f: pathlib.Path) -> tuple:
    rel = f.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


# Comments and literals, matched in one left-to-right pass so that a quote in
# a comment, or `//` in a string, never starts the other.
LEXEMES = re.compile(r"""//[^\n]*|/\*.*?\*/|(?<!\w)r(#*)".*?"\1|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])'""", re.S)


def strip(text: str) -> str:
    """`text` with comments gone (their line breaks kept) and literals emptied."""

    def blank(m):
        lexeme = m.group(0)
        if lexeme.startswith("/"):
            return "\n" * lexeme.count("\n")
        return "''" if lexeme.startswith("'") else '""'

    return LEXEMES.sub(blank, text)


def without_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod tests { ... }` blocks: tests may use anything."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def uses(text: str):
    """Module paths a file names, as lists of segments (with crate/super/self)."""
    paths = []
    # use trees: expand `a::{b, c::{d}}` into paths
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(expand(m.group(1).strip()))
    for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", text):
        paths.append(m.group(1).split("::"))
    for m in re.finditer(r"(?<![:\w])(\w+)::\w", text):
        if m.group(1) not in ("crate", "super", "self"):
            paths.append([m.group(1)])
    return paths


def expand(tree: str):
    tree = re.sub(r"\s+", "", tree)
    if "{" not in tree:
        return [tree.split("::")]
    head, rest = tree.split("{", 1)
    inner = rest[: rest.rfind("}")]
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    if cur:
        items.append(cur)
    base = [p for p in head.split("::") if p]
    out = []
    for item in items:
        for sub in expand(item):
            out.append(base + sub)
    return out


def resolve(mod: tuple, path: list, modules: set, children: dict):
    """The file-module a path names, or None (outside the crate)."""
    segs = [s for s in path if s and s not in ("*",)]
    if not segs:
        return None
    if segs[0] == "crate":
        cur, segs = (), segs[1:]
    elif segs[0] in ("super", "self"):
        cur = mod
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                cur = cur[:-1]
            segs = segs[1:]
    elif segs[0] in children.get(mod, ()):
        cur = mod
    else:
        return None
    best = cur if cur in modules else None
    for s in segs:
        nxt = cur + (s,)
        if nxt in modules:
            cur, best = nxt, nxt
        else:
            break
    return best


def check(src: pathlib.Path) -> list:
    files = {module_of(src, f): f for f in src.rglob("*.rs")}
    modules = set(files)
    children = {}
    for m in modules:
        if m:
            children.setdefault(m[:-1], set()).add(m[-1])
    graph = {}
    for mod, f in files.items():
        text = without_tests(strip(f.read_text()))
        deps = set()
        for p in uses(text):
            target = resolve(mod, p, modules, children)
            # The crate root's re-exports (`crate::Error`) are aliases of
            # the items they name, not a module of their own.
            if target is None or target == mod or target == ():
                continue
            # A parent naming a child's items depends on it; naming a parent
            # module itself (`super::X` where X is defined in the parent) too.
            deps.add(target)
        if mod != ():
            graph[mod] = deps
    return sccs(graph)


def sccs(graph):
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


# Crates that handle the server's data, and the files in them allowed to use
# the file system: the local storage backend, and the kernel's random source.
DATA_CRATES = ("crates/cat2-core/src", "crates/cat2-service/src", "crates/cat2-server/src")
FS_ALLOWED = ("crates/cat2-core/src/storage/local/", "crates/cat2-core/src/random.rs")
FS_USE = re.compile(r"\b(?:std|tokio)::fs\b|(?<![:\w])fs::\w")


def filesystem_outside_storage() -> list:
    """Non-test lines that use std::fs or tokio::fs outside FS_ALLOWED."""
    out = []
    for crate in DATA_CRATES:
        for f in sorted((ROOT / crate).rglob("*.rs")):
            rel = f.relative_to(ROOT).as_posix()
            if rel.startswith(FS_ALLOWED):
                continue
            text = without_tests(strip(f.read_text()))
            for m in FS_USE.finditer(text):
                out.append(f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}")
    return out


def name(src, mod):
    return "/".join(mod) or "lib"


def main():
    dirs = [pathlib.Path(a) for a in sys.argv[1:]] or [ROOT / "crates/cat2-core/src"]
    bad = False
    for src in dirs:
        for comp in check(src):
            bad = True
            print(f"{src}: import cycle: " + ", ".join(name(src, m) for m in comp))
    for use in filesystem_outside_storage():
        bad = True
        print(f"{use}: the server's data is reached through storage::Storage, not the file system")
    if bad:
        sys.exit(1)
    print("no import cycles; no file-system use outside the local storage backend")


if __name__ == "__main__":
    main()
