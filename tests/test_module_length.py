"""No module of the package is longer than DEVELOPERS.md's limit: one responsibility per module, and
a module that grows past it is split along a seam (pipeline.py gave task_preparation.py its cache,
records/audit.py gave audit_verdict.py its pure judgement) before it becomes two modules in one file."""

from __future__ import annotations

from pathlib import Path

import trainarena

MAX_LINES = 500
PACKAGE = Path(trainarena.__file__).parent


def test_no_module_is_longer_than_the_limit() -> None:
    lengths = {path.relative_to(PACKAGE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
               for path in PACKAGE.rglob("*.py")}
    assert len(lengths) > 100  # the package itself was read, not an empty folder
    too_long = {name: lines for name, lines in lengths.items() if lines > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines, split them along a seam: {too_long}"
