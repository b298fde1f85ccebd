"""Checks on what a run left in /output, before anything loads it.

Protects against: pickle weights (they execute code when loaded: ``ArtifactRules.forbidden_suffixes``
are rejected, the path named); symlinks (ALL rejected, not only those resolving outside the output
dir: a link inside is useless to a model directory and a check-then-use race on a link target is not
worth defending; a link can also point at the hidden split); files that are named .safetensors but are
not (the header - 8-byte little-endian length + JSON object - is parsed, tensors are never loaded, and
every tensor's byte range must lie inside the file); oversize artifacts; missing expected files; a
sharded index naming weights outside the artifact; a PEFT adapter's ``adapter_config.json`` that is
no JSON object (malformed, larger than ``CONFIG_MAX_BYTES``, nested deeper than
``CONFIG_MAX_NESTING``): the evaluator and the registry read it. Does not protect against: a
well-formed safetensors file with adversarial values (the evaluator runs in its own process for
that); config.json contents (the evaluator builds the base model's architecture and ignores them).

:func:`check_output` is what the platform calls once the script has ended: it first gives the tree
fixed modes (``output_tree.settle_modes``: no setuid/setgid file, no folder others can write), then
validates; a tree nested deeper than ``ArtifactRules.max_depth`` or holding more than ``max_entries``
entries is refused, and no error while checking escapes as an exception.

The digest is sha256 over the sorted relative paths and contents, so the same artifact gives the
same digest anywhere (it goes into the signed record).
"""

from __future__ import annotations

import hashlib
import json
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainarena.contract import SANDBOX_OUTPUT, TaskType
from trainarena.execution.output_tree import TreeError, settle_modes, walk
from trainarena.settings import ArtifactRules

_HEADER_LENGTH_BYTES = 8
_READ_CHUNK = 1 << 20
ADAPTER_CONFIG = "adapter_config.json"
# An adapter's config is a few KB, a few levels deep; past these it is no config, and parsing or
# rewriting it (the registry does) would take the platform's memory or stack.
CONFIG_MAX_BYTES = 1 << 20
CONFIG_MAX_NESTING = 32


class ArtifactError(ValueError):
    """One reason an artifact is refused."""


@dataclass(frozen=True)
class ArtifactCheck:
    ok: bool
    reason: str | None  # why it was refused; None when ok
    digest: str | None  # sha256 hex; None when refused
    total_bytes: int


def check_output(output_dir: Path, task_type: TaskType, rules: ArtifactRules) -> ArtifactCheck:
    """What the platform does with ``output_dir`` once the script has ended: fixed modes first
    (``output_tree.settle_modes``: no setuid file or writable folder outlives the run), then
    :func:`validate_artifact`. Never raises: whatever the script left, an error while handling it
    refuses this artifact (with the reason), never the caller's run of other scripts."""
    try:
        settle_modes(output_dir, max_depth=rules.max_depth, max_entries=rules.max_entries)
        return validate_artifact(output_dir, task_type, rules)
    except TreeError as error:
        return ArtifactCheck(False, f"the output {error}", None, 0)
    except Exception as error:  # noqa: BLE001 - a script's output must never crash the platform
        return ArtifactCheck(False, f"the output could not be checked ({type(error).__name__}: {error})", None, 0)


def validate_artifact(output_dir: Path, task_type: TaskType, rules: ArtifactRules) -> ArtifactCheck:
    """Check ``output_dir`` against the output contract of ``task_type`` (module docstring)."""
    try:
        files = _list_files(output_dir, rules)
        total = sum(path.stat().st_size for path in files)
        if total > rules.max_artifact_mb * 1024 * 1024:
            raise ArtifactError(f"artifact is {total} bytes, above the limit of {rules.max_artifact_mb} MB")
        names = {path.relative_to(output_dir).as_posix() for path in files}
        _check_expected(names, task_type)
        if task_type is not TaskType.IMAGE and ADAPTER_CONFIG in names:
            read_config(output_dir / ADAPTER_CONFIG)
        check_weight_indexes(output_dir, names)
        for path in files:
            if path.suffix == ".safetensors":
                check_safetensors(path, rules.max_header_mb * 1024 * 1024)
        digest = artifact_digest(output_dir, files)
    except ArtifactError as exc:
        return ArtifactCheck(False, str(exc), None, 0)
    except OSError as exc:
        return ArtifactCheck(False, f"the output could not be read ({_as_script_saw(exc, output_dir)})", None, 0)
    return ArtifactCheck(True, None, digest, total)


def _as_script_saw(error: OSError, output_dir: Path) -> str:
    """An OSError in one line, its file named as the script saw it (under /output): the reason is shown
    to competitors and customers, to whom the run folder's place on the server means nothing."""
    reason = error.strerror or type(error).__name__
    if error.filename is None:
        return reason
    try:
        inside = Path(error.filename).relative_to(output_dir)
    except ValueError:
        return reason
    return f"{SANDBOX_OUTPUT / inside}: {reason}"


def _list_files(output_dir: Path, rules: ArtifactRules) -> list[Path]:
    if output_dir.is_symlink() or not output_dir.is_dir():
        raise ArtifactError(f"the output folder ({SANDBOX_OUTPUT}) is missing (or is a symlink)")
    try:
        entries = walk(output_dir, max_depth=rules.max_depth, max_entries=rules.max_entries)
    except TreeError as error:
        raise ArtifactError(f"the output {error}") from None
    files = []
    for rel, info in entries:
        path = output_dir / rel
        if not rel.isprintable() or _undecodable(rel):
            raise ArtifactError(f"{rel.encode('utf-8', 'backslashreplace').decode()!r}: file names in an artifact must be "
                                "printable UTF-8 (they are recorded, listed and published)")
        if stat.S_ISLNK(info.st_mode):
            raise ArtifactError(f"symlink {rel} -> {path.readlink()}: symlinks are not allowed in an artifact")
        if path.suffix.lower() in rules.forbidden_suffixes:
            raise ArtifactError(f"{rel}: pickle-based weights ({path.suffix}) are refused; save safetensors")
        if stat.S_ISREG(info.st_mode):
            files.append(path)
        elif not stat.S_ISDIR(info.st_mode):
            raise ArtifactError(f"{rel} is not a regular file")
    if not files:
        raise ArtifactError("the output directory is empty: write safetensors weights into --output-dir (/output) "
                            "before exiting; see docs/contract.md")
    return files


def _undecodable(name: str) -> bool:
    """Whether a file name came from bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_expected(names: set[str], task_type: TaskType) -> None:
    weights = {name for name in names if name.endswith(".safetensors")}
    if task_type is TaskType.IMAGE:
        if not weights:
            raise ArtifactError("an image artifact needs pytorch_lora_weights.safetensors (or *.safetensors)")
        return
    if ADAPTER_CONFIG in names:
        if "adapter_model.safetensors" not in names:
            raise ArtifactError(f"{ADAPTER_CONFIG} without adapter_model.safetensors")
        return
    if "config.json" in names and any("/" not in name for name in weights):
        return
    # A model saved into a subfolder (a checkpoint folder) has the right files in the wrong place.
    nested = sorted(name.rpartition("/") for name in names if name.endswith(("/config.json", "/adapter_config.json")))
    where = f"; {nested[0][0]}/ holds {nested[0][2]}: save into --output-dir itself, not a subfolder" if nested else ""
    raise ArtifactError(
        "a text artifact needs, at the top of the output directory, config.json + *.safetensors (save_pretrained) "
        f"or adapter_config.json + adapter_model.safetensors (PEFT); found {sorted(names)[:20]}{where}"
    )


def read_config(path: Path) -> dict[str, Any]:
    """The JSON object in the artifact's config file ``path``; ArtifactError naming the file when it is
    larger than ``CONFIG_MAX_BYTES``, not UTF-8 JSON, nested deeper than ``CONFIG_MAX_NESTING`` or not
    an object."""
    with path.open("rb") as handle:
        raw = handle.read(CONFIG_MAX_BYTES + 1)
    if len(raw) > CONFIG_MAX_BYTES:
        raise ArtifactError(f"{path.name} is larger than a config may be ({CONFIG_MAX_BYTES // 1024} KB)")
    try:
        config = json.loads(raw)
    except RecursionError:  # nested past Python's own limit
        raise ArtifactError(f"{path.name} is nested deeper than {CONFIG_MAX_NESTING} levels") from None
    except ValueError as error:  # not UTF-8, not JSON
        raise ArtifactError(f"{path.name} is not readable JSON ({type(error).__name__}: {error})") from None
    if not isinstance(config, dict):
        raise ArtifactError(f"{path.name} is not a JSON object (it is a {type(config).__name__})")
    if _nesting(config) > CONFIG_MAX_NESTING:
        raise ArtifactError(f"{path.name} is nested deeper than {CONFIG_MAX_NESTING} levels")
    return config


def _nesting(value: object) -> int:
    """How many objects and arrays deep ``value`` is (counted without recursion)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def check_weight_indexes(root: Path, names: set[str]) -> None:
    """Each sharded checkpoint index (``*.index.json``) in the artifact maps its weights only to files
    beside it in the artifact, named plainly: loaders open what its ``weight_map`` names, so an absolute
    or ``../`` name would score another run's weights (the champion's), which the digest never covered."""
    for name in sorted(n for n in names if n.endswith(".index.json")):
        try:
            weight_map = json.loads((root / name).read_text(encoding="utf-8"))["weight_map"]
            shards = set(weight_map.values())
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ArtifactError(f"{name} is not a readable weight index ({type(error).__name__}: {error})") from None
        folder = name.rpartition("/")[0]
        for shard in sorted(shards, key=repr):
            plain = isinstance(shard, str) and shard not in ("", ".", "..") and "/" not in shard and "\\" not in shard
            if not plain or (f"{folder}/{shard}" if folder else shard) not in names:
                raise ArtifactError(f"{name} maps weights to {shard!r}, which is not a file beside it in the artifact")


def check_safetensors(path: Path, max_header_bytes: int) -> None:
    """Parse the header only: length, JSON object, dtype/shape/offsets inside the file."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        raw_length = fh.read(_HEADER_LENGTH_BYTES)
        if len(raw_length) < _HEADER_LENGTH_BYTES:
            raise ArtifactError(f"{path.name}: too short to be safetensors")
        (length,) = struct.unpack("<Q", raw_length)
        if length > max_header_bytes or _HEADER_LENGTH_BYTES + length > size:
            raise ArtifactError(f"{path.name}: not safetensors (header length {length} impossible for a {size}-byte file)")
        try:
            header = json.loads(fh.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{path.name}: not safetensors (header is not JSON: {exc})") from exc
    if not isinstance(header, dict):
        raise ArtifactError(f"{path.name}: not safetensors (header is not a JSON object)")
    data_bytes = size - _HEADER_LENGTH_BYTES - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_bytes and "dtype" in entry and "shape" in entry):
            raise ArtifactError(f"{path.name}: not safetensors (tensor {name!r} has a malformed entry)")


@dataclass(frozen=True)
class FileDigest:
    """One file of a digested folder: its relative POSIX path, size in bytes and own sha256 hex."""

    name: str
    size: int
    sha256: str


def artifact_digest(output_dir: Path, files: list[Path]) -> str:
    """sha256 hex over ``files`` in the order of their path relative to ``output_dir``: each path's
    length (8 bytes little-endian), the path, the file's size (8 bytes little-endian), its bytes."""
    return _digest_files(output_dir, files, None)


def artifact_and_file_digests(output_dir: Path, files: list[Path]) -> tuple[str, list[FileDigest]]:
    """:func:`artifact_digest` and each file's own digest, from one read of each file: a model folder
    is checked by both, and reading gigabytes of weights twice doubles the wait."""
    each: list[FileDigest] = []
    return _digest_files(output_dir, files, each), each


def _digest_files(root: Path, files: list[Path], each: list[FileDigest] | None) -> str:
    """The folder digest; ``each`` (when given) gains every file's own, in the same order."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        name = path.relative_to(root).as_posix()
        rel = name.encode("utf-8", "surrogateescape")  # a name that is not UTF-8 is hashed as its bytes
        size = path.stat().st_size
        digest.update(struct.pack("<Q", len(rel)) + rel)
        digest.update(struct.pack("<Q", size))
        own = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_READ_CHUNK):
                digest.update(chunk)
                if each is not None:
                    own.update(chunk)
        if each is not None:
            each.append(FileDigest(name, size, own.hexdigest()))
    return digest.hexdigest()
