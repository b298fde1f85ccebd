"""The git tree id of a folder, computed in Python: how an exported checkout (``champions export-code``,
``trainarena audit``) is checked against the tree hash recorded at registration, without a repository."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["git_tree_hash"]


def _git_object(kind: bytes, body: bytes) -> bytes:
    return hashlib.sha1(kind + b" %d\0" % len(body) + body).digest()  # noqa: S324 - git's own object ids


def git_tree_hash(root: Path) -> str:
    """The git tree id of the folder ``root`` (files, executables and links; git has no empty folders)."""

    def tree(folder: Path) -> bytes | None:
        entries = []
        for child in folder.iterdir():
            name = os.fsencode(child.name)
            if child.is_symlink():
                entries.append((name, b"120000", _git_object(b"blob", os.fsencode(os.readlink(child)))))
            elif child.is_dir():
                if (sub := tree(child)) is not None:
                    entries.append((name + b"/", b"40000", sub))  # git sorts a folder as if named "name/"
            else:
                mode = b"100755" if child.stat().st_mode & 0o111 else b"100644"
                entries.append((name, mode, _git_object(b"blob", child.read_bytes())))
        if not entries:
            return None
        body = b"".join(mode + b" " + name.removesuffix(b"/") + b"\0" + oid for name, mode, oid in sorted(entries))
        return _git_object(b"tree", body)

    root_id = tree(root)
    return (root_id or _git_object(b"tree", b"")).hex()
