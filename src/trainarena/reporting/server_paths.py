"""What the platform's texts say of its own host to those who are not its operators.

A failure reason, a job's event or a stderr tail written on the server may name a path under the data
dir (a run's folder, an upload, a cached checkout) or in the platform's install (a traceback of its
evaluation process); a working tree's run names the tree's folder as its source, a task its files, a
tournament its driver's host and pid. Operators read them whole (``runs show``, the operator's API views
and dashboard). Competitors, customers and visitors read a text through :class:`ServerPaths`: a path
in a run's sandbox folders as the script saw it (``/output/...``, ``/inputs/...``), any other under the
data dir relative to it, the install's as ``<platform>``; a source that is no remote repository as
:data:`SERVER_SOURCE`, a file on the server by its name; and a JSON view as :func:`public_json` makes it.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import trainarena
from trainarena.contract import SANDBOX_INPUTS, SANDBOX_OUTPUT
from trainarena.reporting.references import tree_label
from trainarena.settings import Settings
from trainarena.submissions.git import is_remote_repo

DATA_DIR_LABEL = "<data dir>"
PLATFORM_LABEL = "<platform>"
# What a run's source (or a registered competitor's repository) reads when it is a folder on the server.
SERVER_SOURCE = "a working tree on the server"
# Fields of the JSON views that name a script as repo@commit (a champion's code, a model's script).
PINNED_FIELDS = ("pinned", "script")
# A run folder's sandbox folders, named as the script saw them (docs/contract.md).
SANDBOX_FOLDERS = {"output": SANDBOX_OUTPUT, "inputs": SANDBOX_INPUTS}
# The characters of a path in a text: it ends at a space, a quote, a bracket or a separator, and a
# sentence's full stop (or an ellipsis) after it is not its own.
_IN_PATH, _ENDS_PATH = r"[^\s'\"`,;:()\[\]<>]", r"[^\s'\"`,;:()\[\]<>.]"
_PATH_TAIL = rf"(?:/(?:{_IN_PATH}*{_ENDS_PATH})?)?(?!{_ENDS_PATH}|\.+{_ENDS_PATH})"
# A terminal's colour and cursor codes (a coloured log line): removed before paths are looked for, as
# one ending in a letter would make the path after it read as the middle of a word.
_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class ServerPaths:
    """The server's own folders (the data dir, the platform's install), and how a text shown to someone
    who is not an operator names a path under them."""

    def __init__(self, data_dir: Path, runs: str = "runs", install: tuple[Path, ...] = ()) -> None:
        """``runs``: the folder of the data dir that holds the run folders (``Settings.work_dir``)."""
        labels = {str(folder): PLATFORM_LABEL for folder in install if len(folder.parts) > 2}  # never /usr itself
        labels |= {str(data_dir): DATA_DIR_LABEL, str(data_dir.resolve()): DATA_DIR_LABEL}
        self._labels, self._runs = labels, PurePosixPath(runs).parts
        roots = sorted(labels, key=len, reverse=True)  # a folder inside another is matched as its own
        # Not inside a longer path or an address (https://host/srv/...): a root starts a path.
        self._pattern = re.compile(f"(?<![\\w.~-])({'|'.join(map(re.escape, roots))})({_PATH_TAIL})")

    @classmethod
    def of(cls, settings: Settings) -> ServerPaths:
        """The data dir of ``settings``, and where the platform and its Python environment are installed."""
        return _server_paths(settings.data_dir, settings.work_dir.relative_to(settings.data_dir).as_posix())

    def hide(self, text: str) -> str:
        """``text`` with each path under the server's folders named without them (and without terminal codes)."""
        return self._pattern.sub(self._shown, _TERMINAL_CODES.sub("", text))

    def _shown(self, found: re.Match[str]) -> str:
        label, rest = self._labels[found.group(1)], PurePosixPath(found.group(2) or "/").parts[1:]
        if label == DATA_DIR_LABEL:
            # A run folder's sandbox folder (runs/.../output/...): the script's own name for it.
            sandbox = next((i for i, part in enumerate(rest) if part in SANDBOX_FOLDERS), None)
            if rest[:len(self._runs)] == self._runs and sandbox is not None:
                return str(SANDBOX_FOLDERS[rest[sandbox]].joinpath(*rest[sandbox + 1:]))
        return "/".join((label, *rest))


def shown_source(repo_url: str | None) -> str | None:
    """A run's source (or a competitor's repository) as those who are not operators read it: a
    repository on another host as it is, a folder on the server (a working tree, a local repository) as
    :data:`SERVER_SOURCE`."""
    if repo_url is None or is_remote_repo(repo_url):
        return repo_url
    return SERVER_SOURCE


@functools.cache
def _server_paths(data_dir: Path, runs: str) -> ServerPaths:
    """One per data dir: each page and response that hides paths asks for it."""
    venv = (Path(sys.prefix),) if sys.prefix != sys.base_prefix else ()
    return ServerPaths(data_dir, runs, (Path(trainarena.__file__).resolve().parents[1], *venv))


def shown_file(source: str | None) -> str | None:
    """A task's dataset source or base model as those who are not operators read it: a hub id (or an
    asset's name) as it is, a path on the server by its name alone."""
    if source is None or not source.startswith("/"):
        return source
    return f"{PurePosixPath(source).name} (on the server)"


def shown_entrant(entrant: str) -> str:
    """A task board's entrant (``reporting.task_board``) as those who are not operators read it: a
    working tree's folder (the board keys trees by it) as its runs are labelled, by the folder's name."""
    return tree_label(entrant) if entrant.startswith("/") else entrant


def public_json(data: Any, paths: ServerPaths) -> Any:
    """A JSON view (of runs, jobs, tournaments, competitors, task boards) as a key that is not an
    operator's reads it: each string with the server's paths hidden, a ``repo_url`` as
    :func:`shown_source` says it (as the repository of a ``pinned`` or ``script`` repo@commit), an
    ``entrant`` and a ``base_model`` as :func:`shown_entrant` and :func:`shown_file` do, and each ``driver``'s
    host and pid (who holds a tournament's lease, on which server) left null."""
    if isinstance(data, Mapping):
        return {key: _public_field(key, value, paths) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [public_json(value, paths) for value in data]
    return paths.hide(data) if isinstance(data, str) else data


def _public_field(key: str, value: Any, paths: ServerPaths) -> Any:
    if key == "repo_url" and isinstance(value, str):
        return shown_source(value)
    if key == "entrant" and isinstance(value, str):
        return shown_entrant(value)
    if key in PINNED_FIELDS and isinstance(value, str) and "@" in value:
        repo, _, commit = value.rpartition("@")
        return f"{shown_source(repo)}@{commit}"
    if key == "base_model" and isinstance(value, str):
        return shown_file(value)
    if key == "driver" and isinstance(value, Mapping):  # a tournament's driver (store.driving)
        return public_json({**value, "host": None, "pid": None}, paths)
    if key == "driver" and isinstance(value, str):  # an attempt's host:pid
        return None
    return public_json(value, paths)
