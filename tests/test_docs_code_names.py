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


def modules_run() -> list[tuple[str, str, list[str]]]:
    """(where, module, the options given to it) of each `python -m` of trainarena or the benchmarks."""
    return [(f"{document.relative_to(ROOT)}:{number}", module, re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest))
            for document in DOCUMENTS
            for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), start=1)
            for module, rest in re.findall(r"python -m ((?:trainarena|benchmarks)[a-z_.]*)([^`#\n]*)", line)]  # fmt: skip


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
    runs = {(where.split(":")[0], module, tuple(options)) for where, module, options in modules_run()}
    assert ("README.md", "benchmarks.engine_scale", ()) in runs
    assert ("docs/benchmarks.md", "benchmarks.list_scale", ("--small", "--large", "--json")) in runs


@pytest.mark.parametrize(("where", "name"), code_names(), ids=[f"{w} {n}" for w, n in code_names()])
def test_every_code_name_in_the_docs_resolves(where: str, name: str) -> None:
    assert _resolves(name), f"{where}: `{name}` is no module or attribute of trainarena"


@pytest.mark.parametrize(("where", "module", "options"), modules_run(), ids=[f"{w} {m}" for w, m, _ in modules_run()])
def test_every_module_the_docs_run_exists_with_its_options(where: str, module: str, options: list[str]) -> None:
    """The options are looked for as the strings its argument parser declares (`"--seeds"`)."""
    if module.startswith("benchmarks"):
        path = ROOT / module.replace(".", "/")
        source = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__main__.py"
    else:
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, f"{where}: no {module}"
        source = Path(spec.origin) if not spec.submodule_search_locations else Path(spec.origin).with_name("__main__.py")
    assert source.is_file(), f"{where}: no {module}"
    text = source.read_text(encoding="utf-8")
    assert [option for option in options if f'"{option}"' not in text] == [], f"{where}: {module} takes no such option"
