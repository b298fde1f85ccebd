"""The execution package's public surface, and the direction of its imports."""

from __future__ import annotations

import ast
from pathlib import Path

import trainarena.execution as execution

PACKAGE = Path(execution.__file__).parent
ALLOWED = ("trainarena.contract", "trainarena.settings", "trainarena.execution")


def test_all_names_exist_and_are_exported() -> None:
    assert sorted(execution.__all__) == execution.__all__
    for name in execution.__all__:
        assert getattr(execution, name) is not None


def test_execution_imports_only_downwards() -> None:
    for module in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trainarena"):
                assert node.module.startswith(ALLOWED), f"{module.name} imports {node.module}"
