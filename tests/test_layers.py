"""Imports only go down: contract/settings <- engine <- tasks, store, execution, submissions <-
orchestrator <- pipeline, demo <- cli. A module may import its own layer or lower ones, never higher."""

from __future__ import annotations

import ast
from pathlib import Path

import trainarena

PACKAGE = Path(trainarena.__file__).parent

LAYERS = {
    "contract": 0,
    "settings": 0,
    "engine": 1,
    "assets": 2,
    "examples": 2,
    "execution": 2,
    "store": 2,
    "tasks": 3,  # a task type may use the sandbox (untrusted reward code runs there)
    "submissions": 3,  # its thin service layer records registrations in the store
    "orchestrator": 4,
    "leaderboard": 5,
    "pipeline": 5,
    "demo": 5,
    "demo_image": 5,
    "cli": 6,
}


def _top(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trainarena."):
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names if alias.name.startswith("trainarena.")]
    return names


def test_every_top_level_module_has_a_layer() -> None:
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if not p.name.startswith("_")}
    tops = {t for t in tops if (PACKAGE / t).is_dir() or (PACKAGE / f"{t}.py").is_file()}
    assert tops <= set(LAYERS), f"give these a layer: {sorted(tops - set(LAYERS))}"


def test_imports_only_go_down() -> None:
    upward = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        owner = relative.parts[0].removesuffix(".py")
        if owner.startswith("_"):
            continue
        for module in _imports(path):
            target = _top(module)
            if target and LAYERS[target] > LAYERS[owner]:
                upward.append(f"{relative} imports {module}")
    assert not upward, "\n".join(upward)
