"""The package's shape: no import cycles between shoprec modules, and one home for shared constants.

Imports are read with ``ast`` from the source, so every import counts: at module level, inside a
function (a lazy import) and under ``if TYPE_CHECKING``. A cycle through any of them means two
modules that each need the other, which this project resolves by moving what they share into a
module of its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def module_files(src: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``) for every module under ``src/package``."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def import_graph(src: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its source)."""
    modules = module_files(src, package)
    graph = {}
    for name, (path, is_package) in modules.items():
        here = name if is_package else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            for target in _imported(node, here, modules):
                while target and target not in modules:  # a name inside a module: the module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    deps.add(target)
        graph[name] = deps
    return graph


def _imported(node: ast.AST, here: str, modules: dict) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: level 1 is this package
        anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    # "from a import b" imports module a.b when there is one, else the name b from module a
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def cycle_groups(graph: dict[str, set[str]]) -> list[set[str]]:
    """Groups of modules that reach each other through imports (Tarjan's strongly connected
    components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One concrete cycle ``[a, b, ..., a]`` per group of :func:`cycle_groups`."""
    return [_cycle_in(group, graph) for group in cycle_groups(graph)]


def _cycle_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    return [*paths[v], start]
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {sorted(group)}")  # cannot happen in an SCC


def test_no_import_cycles_in_shoprec() -> None:
    graph = import_graph(SRC, "shoprec")
    groups = cycle_groups(graph)
    report = [f"{' -> '.join(_cycle_in(g, graph))}  (modules in the cycle: {', '.join(sorted(g))})" for g in groups]
    assert not groups, "import cycles in shoprec:\n" + "\n".join(report)


def test_cycle_finder_reports_each_kind_of_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import thing\n")  # lazy and relative
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\nthing = 1\n")
    (pkg / "d.py").write_text("from pkg import a, c\n")  # imports into the cycle: not part of it
    assert find_cycles(import_graph(tmp_path, "pkg")) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    (pkg / "c.py").write_text("thing = 1\n")
    assert find_cycles(import_graph(tmp_path, "pkg")) == []


LAYERS = {
    "data": 1, "text": 2, "models": 3, "pipeline": 4, "bundles": 5, "eval": 5, "search": 5, "loop": 5,
    "service": 6, "cli": 7, "sim": 7
}
"""docs/architecture.md's stack, bottom up; modules directly in shoprec (errors, timeunits, ranks) are 0."""


def test_layers_only_import_downward() -> None:
    def layer(module: str) -> int:
        parts = module.split(".")
        return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0

    graph = import_graph(SRC, "shoprec")
    upward = [f"{a} -> {b}" for a, deps in sorted(graph.items()) for b in sorted(deps) if layer(b) > layer(a)]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


@pytest.mark.parametrize("constant", ["DAY"])
def test_time_constants_are_defined_once(constant: str) -> None:
    """``DAY`` and friends live in shoprec.timeunits; every other module imports them."""
    homes = []
    for name, (path, _) in module_files(SRC, "shoprec").items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if any(isinstance(t, ast.Name) and t.id == constant for t in targets):
                homes.append(name)
    assert homes == ["shoprec.timeunits"]
