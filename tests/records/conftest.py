"""Fixtures of the records tests: the CLI tests' scripted tournament (tests/cli/cli_store.py) serves
them too, as it does the dashboard's."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1] / "cli")]
