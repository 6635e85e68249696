"""The import graph of kfunc, read from the source with ``ast``: no import cycle, and the bottom
floors of the package (errors, names, seeds, the graph; see the layering in DESIGN.md) import
nothing from layers, models, training or saving, not even inside a function."""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "kfunc"
# Modules of the bottom floors (a name, or a package and everything in it) and what they must not reach.
BOTTOM = ("kfunc.errors", "kfunc.naming", "kfunc.seeding", "kfunc.registry", "kfunc.io", "kfunc.core", "kfunc.graph")
HIGHER = ("kfunc.layers", "kfunc.models", "kfunc.train", "kfunc.saving")
CYCLES_REASON = "the lead is removing the cycles"


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """``{"kfunc.graph.node": path, "kfunc.graph": path of its __init__.py, ...}``."""
    files = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The kfunc modules that importing ``name`` runs: every ``import`` statement at any depth
    (inside functions too), ``from package import name`` counting the submodule when ``name`` is
    one, and the ``__init__`` of each package entered from outside (``kfunc.graph`` importing
    ``kfunc.core.variable`` runs ``kfunc/layers/__init__.py``). The root package is left out:
    every module runs inside it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: level 1 is this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
            parent = target.rpartition(".")[0]
            while "." in parent:
                if not within(name, parent):
                    found.add(parent)
                parent = parent.rpartition(".")[0]
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    files = module_files(package)
    return {name: imported_modules(name, path, set(files)) for name, path in files.items()}


def import_chain(graph: dict[str, set[str]], start: str, goal) -> list[str] | None:
    """The shortest chain of imports from ``start`` to a module for which ``goal`` holds."""
    came_from, queue = {start: None}, deque([start])
    while queue:
        module = queue.popleft()
        if module != start and goal(module):
            chain = [module]
            while came_from[chain[-1]] is not None:
                chain.append(came_from[chain[-1]])
            return chain[::-1]
        for target in sorted(graph[module]):
            if target not in came_from:
                came_from[target] = module
                queue.append(target)
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module that importing ``start`` runs, directly or not."""
    seen, stack = set(), [start]
    while stack:
        for target in graph[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each set of modules that import one another (strongly connected), sorted."""
    reach = {module: reachable(graph, module) for module in graph}
    groups = {tuple(sorted(other for other in graph if other == module or (other in reach[module] and module in reach[other])))
              for module in graph if module in reach[module]}
    return [list(group) for group in sorted(groups)]


def test_the_reader_sees_relative_absolute_and_nested_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg import a\n")
    (package / "a.py").write_text("def f():\n    from .sub import b\n")
    (package / "sub" / "__init__.py").write_text("from . import b\n")
    (package / "sub" / "b.py").write_text("import pkg.c\nfrom pkg.a import f\n")
    (package / "c.py").write_text("import os\n")
    graph = import_graph(package)
    assert graph == {
        "pkg": {"pkg.a"}, "pkg.a": {"pkg.sub", "pkg.sub.b"}, "pkg.c": set(),
        "pkg.sub": {"pkg.sub.b"}, "pkg.sub.b": {"pkg.c", "pkg.a"},
    }
    assert import_cycles(graph) == [["pkg.a", "pkg.sub", "pkg.sub.b"]]
    assert import_chain(graph, "pkg.sub.b", lambda m: m == "pkg.sub") == ["pkg.sub.b", "pkg.a", "pkg.sub"]


def test_kfunc_has_no_import_cycle():
    cycles = import_cycles(import_graph())
    assert not cycles, "\n".join(f"a cycle of {len(c)} modules: {', '.join(c)}" for c in cycles)


# The bottom modules that reach the floors above on the day this test was written; one that no
# longer does makes its test pass unexpectedly, which fails: then take it off this list.
BROKEN_TODAY: set[str] = set()


def _bottom_modules() -> list:
    modules = sorted(m for m in module_files() if any(within(m, floor) for floor in BOTTOM))
    return [pytest.param(m, id=m, marks=[pytest.mark.xfail(strict=True, reason=CYCLES_REASON)] if m in BROKEN_TODAY else [])
            for m in modules]


@pytest.mark.parametrize("module", _bottom_modules())
def test_bottom_floors_import_nothing_from_above(module):
    chain = import_chain(import_graph(), module, lambda m: any(within(m, high) for high in HIGHER))
    assert chain is None, (
        f"{module} imports {chain[-1]} (through {' -> '.join(chain)}); a bottom floor imports only from its "
        "own floor or below"
    )
