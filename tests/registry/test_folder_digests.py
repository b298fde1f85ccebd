"""A model folder's digest and its files' own sha256 come from one read of each file (`models verify`
and registration read gigabytes of weights twice before), and the folder digest is byte for byte the
one the records' artifact digest and `path_digest` give: the layout docs/api.md describes, recomputed
here on its own, over nested folders, empty files and odd names."""

from __future__ import annotations

import hashlib
import pathlib
import struct
from collections import Counter
from pathlib import Path

import pytest

from trainarena.tasks.digests import folder_and_file_digests, path_digest

FILES = {
    "model.safetensors": b"\x00" * 5000,
    "empty": b"",
    "a-c": b"dash sorts before slash",
    "a/b": b"nested",
    "a/deeper/still/empty.json": b"",
    "a b/é 日本 🙂.txt": b"unicode",
    "-leading dash": b"x",
    "new\nline": b"y",
    "#%[brackets].md": b"z",
}


def _tree(root: Path) -> Path:
    for name, content in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    (root / "an empty folder").mkdir()  # no file: not in the digest
    return root


def _layout_digest(files: dict[str, bytes]) -> str:
    """The documented layout: per file in the order of its relative POSIX path, the path's length (8
    bytes little-endian), the path, the size (8 bytes little-endian), the bytes."""
    digest = hashlib.sha256()
    for name in sorted(files):
        encoded = name.encode()
        digest.update(struct.pack("<Q", len(encoded)) + encoded + struct.pack("<Q", len(files[name])) + files[name])
    return digest.hexdigest()


def test_one_pass_gives_the_folder_digest_and_each_files_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path / "tree")
    opened: Counter[str] = Counter()
    real_open = pathlib.Path.open

    def counting_open(self: Path, *args: object, **kwargs: object):  # noqa: ANN202 - Path.open's own type
        opened[self.relative_to(root).as_posix()] += 1
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", counting_open)
    digest, files = folder_and_file_digests(root)
    assert opened == Counter(FILES.keys())  # every file read once, nothing else
    monkeypatch.undo()

    assert digest == _layout_digest(FILES) == path_digest(root)
    assert [(f.name, f.size, f.sha256) for f in files] == [
        (name, len(FILES[name]), hashlib.sha256(FILES[name]).hexdigest()) for name in sorted(FILES)]  # fmt: skip
    assert [f.sha256 for f in files] == [path_digest(root / f.name) for f in files]
