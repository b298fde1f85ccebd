"""``trainarena.toml``: the manifest at the root of every competitor repository (contract v1).

::

    [trainarena]
    contract = 1
    entrypoint = "train.py"
    task_types = ["instruct"]   # optional; absent means every task type
    license = "MIT"             # optional; the SPDX id of the script's license (a LICENSE file wins)

Parsing is strict on purpose: a typo such as ``entry_point`` would otherwise register a script that
can never run. Other top-level tables (``[tool.*]`` and the like) are ignored.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from trainarena.contract import CONTRACT_VERSION, MANIFEST_NAME, TaskType
from trainarena.submissions.errors import RegistrationError

_KNOWN_KEYS = frozenset({"contract", "entrypoint", "task_types", "license"})


@dataclass(frozen=True)
class Manifest:
    """A validated manifest. ``task_types`` is None when the script declares no restriction."""

    contract: int
    entrypoint: str  # POSIX path relative to the repository root, e.g. "train.py" or "src/train.py"
    task_types: tuple[TaskType, ...] | None = None
    license: str | None = None  # SPDX id, e.g. MIT; shown when the champion's code is open-sourced

    def supports(self, task_type: TaskType) -> bool:
        return self.task_types is None or task_type in self.task_types


def _near(word: str, known: Iterable[str]) -> str | None:
    """The known name ``word`` is most likely a typo of (``entry_point`` for ``entrypoint``), if any."""
    close = difflib.get_close_matches(word.lower(), sorted(known), n=1, cutoff=0.75)
    return close[0] if close else None


def parse_manifest(text: str) -> Manifest:
    """Parse and validate the manifest's text; raise RegistrationError naming the field and the fix.

    >>> parse_manifest('[trainarena]\\ncontract = 1\\nentrypoint = "train.py"\\n').entrypoint
    'train.py'
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RegistrationError(f"{MANIFEST_NAME} is not valid TOML: {error}") from error
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise RegistrationError(f"{MANIFEST_NAME} holds arrays or tables nested deeper than Python can read") from None
    section = document.get("trainarena")
    if not isinstance(section, dict):
        near = [name for name in document if isinstance(document[name], dict) and _near(name, ("trainarena",))]
        found = f" (found [{near[0]}]: a typo?)" if near else ""
        raise RegistrationError(
            f"{MANIFEST_NAME} has no [trainarena] table{found}; it needs at least "
            f'[trainarena] contract = {CONTRACT_VERSION} and entrypoint = "train.py"'
        )
    unknown = sorted(set(section) - _KNOWN_KEYS)
    if unknown:
        named = [key + (f" (did you mean {near!r}?)" if (near := _near(key, _KNOWN_KEYS)) else "") for key in unknown]
        raise RegistrationError(
            f"{MANIFEST_NAME}: unknown key(s) {', '.join(named)} in [trainarena]; "
            f"contract {CONTRACT_VERSION} knows {', '.join(sorted(_KNOWN_KEYS))}"
        )
    return Manifest(
        contract=_contract_version(section.get("contract")),
        entrypoint=validate_entrypoint_path(section.get("entrypoint")),
        task_types=_task_types(section.get("task_types")),
        license=_license(section.get("license")),
    )


def _contract_version(value: object) -> int:
    if value is None:
        raise RegistrationError(f"{MANIFEST_NAME}: missing 'contract'; write contract = {CONTRACT_VERSION}")
    # bool is an int in Python; `contract = true` is a mistake, not version 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise RegistrationError(f"{MANIFEST_NAME}: 'contract' must be an integer, got {value!r}")
    if not 1 <= value <= CONTRACT_VERSION:
        raise RegistrationError(
            f"{MANIFEST_NAME}: contract version {value} is not supported; "
            f"this platform runs contract versions 1 to {CONTRACT_VERSION}"
        )
    return value


def validate_entrypoint_path(value: object) -> str:
    """The entrypoint as a normalized relative POSIX path to a ``.py`` file inside the repository."""
    if value is None:
        raise RegistrationError(f'{MANIFEST_NAME}: missing \'entrypoint\'; write entrypoint = "train.py"')
    if not isinstance(value, str) or not value.strip():
        raise RegistrationError(f"{MANIFEST_NAME}: 'entrypoint' must be a non-empty string, got {value!r}")
    if "\\" in value or "\0" in value:
        raise RegistrationError(
            f"{MANIFEST_NAME}: entrypoint {value!r} must use forward slashes, e.g. \"src/train.py\""
        )
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise RegistrationError(
            f"{MANIFEST_NAME}: entrypoint {value!r} escapes the repository; "
            'give a path relative to the repository root, e.g. "train.py"'
        )
    if path.suffix != ".py":
        raise RegistrationError(f"{MANIFEST_NAME}: entrypoint {value!r} must be a Python file ending in .py")
    return path.as_posix()  # drops "./" and doubled slashes, so it matches the tree listing


def _task_types(value: object) -> tuple[TaskType, ...] | None:
    if value is None:
        return None
    allowed = ", ".join(t.value for t in TaskType)
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise RegistrationError(
            f"{MANIFEST_NAME}: 'task_types' must be a non-empty list of strings from {allowed} "
            f"(or left out to accept every type), got {value!r}"
        )
    unknown = [item for item in value if item not in TaskType._value2member_map_]
    if unknown:
        raise RegistrationError(
            f"{MANIFEST_NAME}: unknown task type(s) {', '.join(map(repr, unknown))}; allowed: {allowed}"
        )
    return tuple(dict.fromkeys(TaskType(item) for item in value))  # dedupe, keep order


def _license(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RegistrationError(f'{MANIFEST_NAME}: license must be an SPDX id in a string, e.g. license = "MIT"; got {value!r}')
    return value.strip()
