"""Every package and top-level module of trainarena imports on its own, as the first trainarena
module of a process: an import cycle breaks only for the module imported first (``trainarena.web``
alone, and ``operations.serving`` alone once, failed while every test that imported the API first
passed). ``__main__`` is left out: importing it runs the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trainarena

PROBE = """
import importlib, pkgutil, sys, trainarena
failed = []
names = ["trainarena." + info.name for info in pkgutil.iter_modules(trainarena.__path__) if info.name != "__main__"]
names += [name + "." + info.name for name in list(names) if hasattr(importlib.import_module(name), "__path__")
          for info in pkgutil.iter_modules(importlib.import_module(name).__path__) if info.ispkg]
for name in names:
    for loaded in [m for m in sys.modules if m == "trainarena" or m.startswith("trainarena.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:
        failed.append(f"{name}: {type(error).__name__}: {error}")
print(len(names))
print("\\n".join(failed))
"""


def test_every_package_and_top_level_module_imports_first() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600,
                            cwd=Path(trainarena.__file__).parents[2], check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    count, *failures = result.stdout.strip().splitlines()
    assert int(count) > 25  # the probe found the packages and modules (33 on 2026-12-02)
    assert failures == []
