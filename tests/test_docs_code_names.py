"""The code README.md and docs/*.md point readers to exists: each `engine.bracket.replay`-like name of the
package (module, then attributes) resolves, and each `python -m MODULE` of trainarena or the benchmarks
is a module there. A renamed function must take the sentence that explains it along."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import pytest

import trainarena
from trainarena.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGES = {module.name for module in pkgutil.iter_modules(trainarena.__path__)}
# `api.port`, `jobs.max_attempts`: settings keys whose section shares its name with a package.
SETTINGS_KEYS = {f"{section}.{field}" for section, info in Settings.model_fields.items()
                 for field in getattr(info.annotation, "model_fields", {})}  # fmt: skip
DOTTED = re.compile(r"`((?:trainarena\.)?([a-z_]+)(?:\.[A-Za-z_][A-Za-z_0-9]*)+)(?:\(\))?`")
FILE_NAME = re.compile(r"\.(md|py|toml|db|json|txt)$")


def code_names() -> list[tuple[str, str]]:
    found = []
    for document in DOCUMENTS:
        for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), start=1):
            for name, first in DOTTED.findall(line):
                if (first == "trainarena" or first in PACKAGES) and name not in SETTINGS_KEYS and not FILE_NAME.search(name):
                    found.append((f"{document.relative_to(ROOT)}:{number}", name.removeprefix("trainarena.")))
    return found


def modules_run() -> list[tuple[str, str]]:
    return [(f"{document.relative_to(ROOT)}:{number}", module) for document in DOCUMENTS
            for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), start=1)
            for module in re.findall(r"python -m ((?:trainarena|benchmarks)[a-z_.]*)", line)]  # fmt: skip


def _resolves(name: str) -> bool:
    """Whether trainarena.NAME is a module, or a module's attribute (path)."""
    parts = f"trainarena.{name}".split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            if importlib.util.find_spec(module_name) is None:
                continue
        except ModuleNotFoundError:  # a name inside a module, not a package, is no module
            continue
        target = importlib.import_module(module_name)
        for attribute in parts[split:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_the_docs_are_read_for_code_names() -> None:
    names = {name for _, name in code_names()}
    assert {"engine.bracket.replay", "tasks.digests.path_digest", "engine.MAX_SIMULATED_ENTRANTS"} <= names
    assert "api.port" not in names and not _resolves("engine.bracket.no_such_function")
    assert ("README.md", "benchmarks.engine_scale") in {(where.split(":")[0], module) for where, module in modules_run()}


@pytest.mark.parametrize(("where", "name"), code_names(), ids=[f"{w} {n}" for w, n in code_names()])
def test_every_code_name_in_the_docs_resolves(where: str, name: str) -> None:
    assert _resolves(name), f"{where}: `{name}` is no module or attribute of trainarena"


@pytest.mark.parametrize(("where", "module"), modules_run(), ids=[f"{w} {m}" for w, m in modules_run()])
def test_every_module_the_docs_run_exists(where: str, module: str) -> None:
    if module.startswith("benchmarks"):
        path = ROOT / module.replace(".", "/")
        assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), f"{where}: no {module}"
    else:
        assert importlib.util.find_spec(module) is not None, f"{where}: no {module}"
