"""Messages and API descriptions name a setting as operators set it (``api.upload_max_bytes`` in the
config file, ``TRAINARENA_API__UPLOAD_MAX_BYTES``), never by the Python class that holds it
(``ApiRules.upload_max_bytes``, which no operator can type). Docstrings and comments, read by
developers, may name the class."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from trainarena.settings import Settings
from trainarena.settings.fields import Section

ROOT = Path(__file__).resolve().parents[1]


def _sections() -> dict[str, tuple[str, set[str]]]:
    """Each settings section's class name: (its key in the config file, its fields)."""
    found = {}
    for key, field in Settings.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, Section):
            found[kind.__name__] = (key, set(kind.model_fields))
    return found


SECTIONS = _sections()
CLASS_DOT_FIELD = re.compile(rf"\b({'|'.join(SECTIONS)})\.([a-z_]+)\b")


def _class_names(text: str) -> list[str]:
    """``Class.field`` mentions of a setting in ``text``, each with the key to name it by."""
    return [f"{name}.{field} (say {SECTIONS[name][0]}.{field})" for name, field in CLASS_DOT_FIELD.findall(text)
            if field in SECTIONS[name][1]]  # fmt: skip


def _strings(tree: ast.AST) -> list[ast.Constant]:
    """Every string constant of the module but its docstrings (a bare string statement is one)."""
    docs = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    return [node for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs]


def test_the_sections_are_found() -> None:
    assert SECTIONS["ApiRules"][0] == "api" and "upload_max_bytes" in SECTIONS["ApiRules"][1]
    assert _class_names("over ApiRules.upload_max_bytes, see TournamentRules.as_recorded") == [
        "ApiRules.upload_max_bytes (say api.upload_max_bytes)"]


def test_no_message_names_a_setting_by_its_class() -> None:
    found = []
    for path in sorted((ROOT / "src" / "trainarena").rglob("*.py")):
        for node in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {name}" for name in _class_names(node.value)]
    for path in sorted([*(ROOT / "docs").glob("*.md"), *(ROOT / "src" / "trainarena" / "web" / "templates").glob("*.html")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            found += [f"{path.relative_to(ROOT)}:{number}: {name}" for name in _class_names(line)]
    assert found == []
