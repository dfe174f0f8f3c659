"""The packages' layering, read from their source: `broker/` is the contract and broker tooling that
edge and central share, so it imports neither of them nor the `sharpeyes` command; edge and
central never import each other; nothing below `sharpeyes/` imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT

# What each package may not import (its own and lower layers are fine).
FORBIDDEN = {
    "broker": ("edge", "central", "models", "sharpeyes"),
    # models/ holds the registry the edge loads and the tools that run the edge's detector (evaluation).
    "models": ("central", "sharpeyes"),
    "edge": ("central", "sharpeyes"),
    # Central reads the model registry for its face detector's weights (central/redaction.py).
    "central": ("edge", "sharpeyes"),
}


def _imports(path: Path) -> list[tuple[int, str]]:
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
