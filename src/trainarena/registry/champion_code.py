"""A champion's code handed to others: the stored tree of its commit as a gzipped tar stream
(``GET /v1/champions/{name}/code``, the dashboard's ``/competitors/{name}/code``), so that the winning
script outlives its repository (made private, deleted, its history rewritten).

It is served only when the tree is stored on this server (a request never waits on a git host: an
operator's ``trainarena champions export-code`` fetches a lost one again), when it is the registered
one (export-code's check, :func:`check_tree`: its git tree hash and source digest recomputed from its
files) and when its license lets anyone redistribute it (``LicenseInfo.redistribution_refusal``). All is
checked before the first byte: once a stream has begun, its status is sent. The dashboard's link
serves anyone, so a download's cost is paid once per state of the tree: a check (either verdict) is
not repeated while none of its files changed (their sizes and change times, ``st_ctime``, which no
write or ``touch`` leaves as it was), and a small tree's archive is compressed once and kept."""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from trainarena.registry.archive import tar_chunks
from trainarena.registry.source import CheckedTree, CodeRefused, check_tree, crowned_competitor, registered_tree
from trainarena.settings import Settings
from trainarena.store.models import Competitor
from trainarena.submissions.seal import folder_stamps


class CodeDiffers(CodeRefused):
    """The stored tree is not the registered one (changed on the server since)."""


class NotRedistributable(CodeRefused):
    """The code's license does not let anyone redistribute it, or it names none."""


@dataclass(frozen=True)
class ChampionCode:
    """A champion's stored tree, checked: what a download sends."""

    checked: CheckedTree
    archive: bytes | None = None  # the whole tar.gz, kept for a small tree (``ARCHIVE_KEPT_MAX_BYTES``)

    @property
    def root_name(self) -> str:
        """The archive's one folder (and its file's name): the champion and its commit."""
        return f"{self.checked.source.competitor}-{self.checked.source.commit[:12]}"

    def headers(self) -> dict[str, str]:
        """The file's name, and what it is checked with once unpacked: the commit's git tree hash (``git
        write-tree`` in the folder gives it) and trainarena's source digest."""
        source = self.checked.source
        return {"Content-Disposition": f'attachment; filename="{self.root_name}.tar.gz"', "X-Trainarena-Commit": source.commit,
                "X-Trainarena-Tree-Hash": source.tree_hash, "X-Trainarena-Source-Digest": source.source_digest,
                "X-Trainarena-License": source.license.describe()}  # fmt: skip

    def chunks(self) -> Iterator[bytes]:
        """The tar.gz stream: the kept archive, else built as it is sent."""
        if self.archive is not None:
            return iter([self.archive])
        return gzipped(tar_chunks(self.checked.folder, self.root_name, git_modes=True))


def gzipped(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` compressed as one gzip stream, a chunk at a time."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16 +: gzip's header and trailer
    for chunk in chunks:
        if compressed := compressor.compress(chunk):
            yield compressed
    yield compressor.flush()


# How many checked trees are remembered (a handful of champions reign at once; past ones are few), and
# the largest tree (its files' total size) whose archive is kept with its check: 16 x 4 MiB at most.
CHECKED_TREES_KEPT = 16
ARCHIVE_KEPT_MAX_BYTES = 4 << 20


class _CheckedTrees:
    """Checked trees, by competitor, folder and the state of their files (LRU): a folder is a commit's,
    which two competitors may share (a flagged copy), and the archive names the competitor."""

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[int, Path, tuple], ChampionCode] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, settings: Settings, competitor: Competitor, folder: Path) -> ChampionCode:
        stamps = folder_stamps(folder)
        key = (competitor.id, folder, tuple(sorted(stamps.items())))
        with self._lock:
            if (known := self._kept.get(key)) is not None:
                self._kept.move_to_end(key)
                return known
        code = ChampionCode(check_tree(settings, competitor, folder))
        if code.checked.verified and code.checked.source.license.redistribution_refusal() is None and \
                sum(stamp[3] for stamp in stamps.values()) <= ARCHIVE_KEPT_MAX_BYTES:  # fmt: skip
            code = ChampionCode(code.checked, b"".join(code.chunks()))
        with self._lock:
            self._kept[key] = code
            while len(self._kept) > CHECKED_TREES_KEPT:
                self._kept.popitem(last=False)
        return code


_checked_trees = _CheckedTrees()


def champion_code(settings: Settings, session: Session, name: str) -> ChampionCode:
    """The code of ``name``, a champion crowned at some time, ready to send; NotAChampion for any other
    name, and CodeRefused (CodeNotStored, CodeDiffers, NotRedistributable) saying why it is not sent."""
    competitor = crowned_competitor(session, name)
    code = _checked_trees.check(settings, competitor, registered_tree(settings, competitor, fetch=False))
    checked = code.checked
    if not checked.verified:
        raise CodeDiffers(
            f"the code of {name} stored on this server differs from the one registered (tree hash {checked.tree_hash[:12]}, "
            f"registered {competitor.tree_hash[:12]}; source digest {checked.source_digest[:12]}, registered "
            f"{competitor.source_digest[:12]}), so it is not served; an operator removes the server's copy of commit "
            f"{competitor.commit} (its cache's checkouts/) and `trainarena champions export-code {name} DIR` fetches it again"
        )  # fmt: skip
    refusal = checked.source.license.redistribution_refusal()
    if refusal is not None:
        raise NotRedistributable(f"the code of {name} is not served: {refusal}")
    return code
