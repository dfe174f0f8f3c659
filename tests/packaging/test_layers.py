"""The packages' layering, read from their source. The layers run one way:
`broker` <- `models` <- `edge`, `central` <- `sharpeyes`. `broker/` is the contract and broker
tooling that the others share; `models/` (the detector, its decoders, the registry and the tools
that measure and train models) builds on the contract only; edge and central never import each
other; nothing below `sharpeyes/` imports it. And inside each package the modules import one
another without circles."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT

# What each package may not import (its own and lower layers are fine).
FORBIDDEN = {
    "broker": ("edge", "central", "models", "sharpeyes"),
    # models/ holds the detector the edge runs and the tools that measure it: below the edge.
    "models": ("edge", "central", "sharpeyes"),
    "edge": ("central", "sharpeyes"),
    # Central reads the model registry for its face detector's weights (central/evidence/redaction.py).
    "central": ("edge", "sharpeyes"),
}
PACKAGES = (*sorted(FORBIDDEN), "sharpeyes")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in the file, wherever it stands: inside functions and inside
    ``if TYPE_CHECKING:`` blocks too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_or_sideways_import(package: str) -> None:
    wrong = []
    for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
        for line, module in _imports(path):
            if module.split(".")[0] in FORBIDDEN[package]:
                wrong.append(f"{path.relative_to(PROJECT_ROOT)}:{line} imports {module}")
    assert wrong == [], "\n".join(wrong)


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from sharpeyes.demo import run_demo\n    import central.db\n")
    assert [m for _, m in _imports(source)] == ["sharpeyes.demo", "central.db"]


# -- no import circles inside a package --------------------------------------------------------------


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(path: Path) -> list[str]:
    """What ``_imports`` finds, plus ``X.Y`` for every ``from X import Y``: Y may be a module."""
    names = [module for _, module in _imports(path)]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names


def _import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, counting imports inside functions and
    ``if TYPE_CHECKING:`` blocks (a circle hidden there is still one for the reader). A name that
    is not a module of the package stands for the nearest enclosing one that is:
    ``from edge.rules import Rule`` imports ``edge.rules``."""
    root = package_dir.parent
    paths = {_module_name(path, root): path for path in sorted(package_dir.rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        for imported in _imported_names(path):
            target = imported
            while target and target not in paths:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle (its modules in import order, the first repeated at the end) per strongly
    connected group of modules (Tarjan's algorithm, iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return [_circle_in(graph, group) for group in groups]


def _circle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest circle through the group's first module (breadth-first, inside the group)."""
    first = min(group)
    came_from: dict[str, str] = {}
    frontier = [first]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & group):
                if child == first:
                    path = [node]
                    while path[-1] != first:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), first]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no circle through {first} in {sorted(group)}")  # a group of two or more always has one


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle_inside_a_package(package: str) -> None:
    circles = _circles(_import_graph(PROJECT_ROOT / package))
    assert circles == [], "import circles:\n" + "\n".join(" -> ".join(circle) for circle in circles)


def test_the_circle_check_sees_a_circle_hidden_by_type_checking_and_functions(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "node.py").write_text("def start():\n    from pkg.commands import Handler\n")
    (package / "commands.py").write_text("from pkg import metrics\n")
    (package / "metrics.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.node import Node\n")
    (package / "leaf.py").write_text("import pkg.metrics\n")
    assert _circles(_import_graph(package)) == [["pkg.commands", "pkg.metrics", "pkg.node", "pkg.commands"]]
    (package / "metrics.py").write_text("")
    assert _circles(_import_graph(package)) == []


# -- central's subpackages, in layers ---------------------------------------------------------------

# Lowest first (central/README.md's module table, top to bottom): each may import only those before
# it. The ingest and the API are two entrances to one workflow, so neither knows the other.
CENTRAL_LAYERS = ("store", "workflow", "evidence", "auth", "fleet", "learning", "reporting", "ingest", "api")
CENTRAL_TOP = ("server", "cli", "cli_fleet")  # the wiring: may import every layer


def _central_layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "central" and len(parts) > 1 else None


def test_central_subpackages_import_only_the_layers_below() -> None:
    wrong = []
    for path in sorted((PROJECT_ROOT / "central").rglob("*.py")):
        own = _central_layer(_module_name(path, PROJECT_ROOT))
        if own is None or own in CENTRAL_TOP or own == "web":
            continue
        assert own in CENTRAL_LAYERS, f"{path.relative_to(PROJECT_ROOT)} is in no layer: add its subpackage to CENTRAL_LAYERS"
        allowed = CENTRAL_LAYERS[: CENTRAL_LAYERS.index(own) + 1]
        for line, module in _imports(path):
            layer = _central_layer(module)
            if layer is not None and layer not in allowed:
                wrong.append(f"{path.relative_to(PROJECT_ROOT)}:{line} ({own}) imports {module} ({layer})")
    assert wrong == [], "\n".join(wrong)
