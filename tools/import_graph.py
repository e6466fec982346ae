"""The package's import graph: cycles, upward arrows against the layers below, and functions over a length.

    python tools/import_graph.py              # report; exit 1 if a cycle, an upward arrow or a long function
    python tools/import_graph.py --json

Every ``import`` counts, module-level or inside a function (a function-local import hides an arrow, it does not
remove it). A module may import its own layer or lower ones; a cycle is a set of modules that import each other
(strongly connected components of the graph). Layers, lowest first (a package name covers its sub-modules):
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: lowest first; a module is in the layer of its longest matching prefix
LAYERS = (
    ("racing.exit_codes", "racing.config", "racing.argtypes", "racing.interfaces", "racing.logs"),
    ("racing.geometry", "racing.models"),
    ("racing.track",),
    ("racing.control",),
    ("racing.sim", "racing.raceline"),
    ("racing.sysid", "racing.plot"),
    ("racing.assembly",),
    ("racing.runtime", "racing.sweep", "racing.bench"),
    ("racing.api", "racing.cli", "racing.__main__", "racing"),
)
MAX_FUNCTION_LINES = 100


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(mod: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports (``from racing.x import y``: ``racing.x.y`` when that is a module)."""
    mod = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(mod, node, path.name == "__init__.py")
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for n in names:
            while n and n not in modules:
                n = n.rpartition(".")[0]
            if n and n != mod:
                out.add(n)
    return out


def layer(mod: str) -> int:
    best, level = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and len(p) > best:
                best, level = len(p), i
    return level


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def long_functions(path: Path, limit: int) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(f"{module_name(path)}.{n.name}", n.end_lineno - n.lineno + 1) for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > limit]


def report(package: Path = ROOT / "racing", limit: int = MAX_FUNCTION_LINES) -> dict:
    """``{"cycles": [[modules]], "upward": [[importer, imported]], "unlayered": [modules], "long_functions":
    [[name, lines]]}`` for the package (parents of a module are not counted as its imports)."""
    files = sorted(package.rglob("*.py"))
    modules = {module_name(f) for f in files}
    graph = {module_name(f): imports_of(f, modules) for f in files}
    for m in graph:  # a package's __init__ importing its own sub-modules is how a package is made
        graph[m] = {d for d in graph[m] if not m.startswith(d + ".") and not (d.startswith(m + ".") and
                                                                               m.count(".") >= 1)}
    upward = sorted([a, b] for a, deps in graph.items() for b in deps if layer(b) > layer(a))
    return {"cycles": cycles(graph), "upward": upward,
            "unlayered": sorted(m for m in graph if layer(m) < 0),
            "long_functions": sorted([n, k] for f in files for n, k in long_functions(f, limit))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--max-lines", type=int, default=MAX_FUNCTION_LINES)
    args = ap.parse_args(argv)
    r = report(limit=args.max_lines)
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        for key, rows in r.items():
            print(f"{key}: {len(rows)}")
            for row in rows:
                print("   ", " -> ".join(row) if key != "long_functions" else f"{row[0]} ({row[1]} lines)")
    return 1 if any(r.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
