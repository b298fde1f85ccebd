"""A lightly edited copy of Python code, as a copier would make one: every name the file binds renamed,
the top-level functions in another order, dead code added. The result still parses (ast.unparse)."""

from __future__ import annotations

import ast
import random
import shutil
from pathlib import Path

DEAD_CODE = '''
def _unused_schedule(steps, base_rate):
    rates = []
    for step in range(steps):
        rates.append(base_rate * (1 - step / max(steps, 1)))
    return rates


VERBOSE_LOGGING = False
'''


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.mapping.get(node.arg, node.arg)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.name = self.mapping.get(node.name, node.name)
        self.generic_visit(node)
        return node


def bound_names(tree: ast.AST) -> set[str]:
    """Names the file binds: assigned variables, function names and parameters."""
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    names |= {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    names |= {arg.arg for node in ast.walk(tree) if isinstance(node, ast.arguments) for arg in node.args + node.kwonlyargs}
    return names - {"self"}


def disguise(source: str, seed: int = 0) -> str:
    """``source`` with its bound names renamed, its top-level functions shuffled and dead code inserted."""
    tree = ast.parse(source)
    mapping = {name: f"v{index}_{name[::-1].strip('_')}" for index, name in enumerate(sorted(bound_names(tree)))}
    tree = _Renamer(mapping).visit(tree)
    functions = [i for i, statement in enumerate(tree.body) if isinstance(statement, ast.FunctionDef)]
    shuffled = [tree.body[i] for i in functions]
    random.Random(seed).shuffle(shuffled)
    for index, function in zip(functions, shuffled, strict=True):
        tree.body[index] = function
    middle = len(tree.body) // 2
    tree.body[middle:middle] = ast.parse(DEAD_CODE).body
    return ast.unparse(tree) + "\n"


def disguised_copy(example: Path, destination: Path) -> Path:
    """A copy of the example folder with every Python file disguised (other files as they are)."""
    shutil.copytree(example, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in destination.rglob("*.py"):
        path.write_text(disguise(path.read_text()))
    return destination
