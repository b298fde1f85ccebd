"""Open-sourcing a champion: its ``repo@commit``, the license its repository declares, its source
digest, and the exact registered tree written to a folder (``trainarena champions export-code``),
checked against the tree hash and the source digest recorded when it was registered.

The tree hash is recomputed from the written files the way git computes a commit's tree (blob and
tree objects, modes 100644/100755/120000), so "equal" means byte-identical to the registered commit.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from trainarena.registry.licenses import LicenseInfo, detect_license
from trainarena.settings import Settings
from trainarena.store import champion_history, get_competitor
from trainarena.store.models import Competitor
from trainarena.submissions import RegistrationError, checkout_path, register, source_digest
from trainarena.submissions.tree_hash import git_tree_hash


class ExportError(ValueError):
    """The code cannot be written where asked, or its tree cannot be fetched again."""


class NotAChampion(ExportError):
    """A name that no champion had (reigning or earlier): only a champion's code is open-sourced. Its
    message names who the champions are."""


class CodeRefused(ExportError):
    """A champion's code that is not handed to others (registry.champion_code): the subclass says why."""


class CodeNotStored(CodeRefused):
    """The champion's tree is not on this server, and the caller may not fetch it from a git host (a web
    request)."""


def crowned_competitor(session: Session, name: str) -> Competitor:
    """The competitor ``name`` when it was crowned champion at some time (of any kind); NotAChampion for
    any other name, which a program serving code must not hand out as a champion's."""
    history = champion_history(session)
    crowned = {row.competitor.name: row.competitor for row in history}
    if name in crowned:
        return crowned[name]
    champions = ", ".join(dict.fromkeys(f"{row.competitor.name} ({row.kind})" for row in history))
    known = f"the champions are {champions}" if champions else "no champion has been crowned yet"
    said = f"{name} has never been crowned champion" if get_competitor(session, name) else f"no competitor {name!r}"
    raise NotAChampion(f"{said}; {known}")


@dataclass(frozen=True)
class ChampionSource:
    """What a champion's page shows about its code (pure data; the API and the CLI share it)."""

    competitor: str
    repo_url: str
    commit: str
    tree_hash: str
    source_digest: str
    license: LicenseInfo

    def to_json(self) -> dict[str, Any]:
        return {"competitor": self.competitor, "repo_url": self.repo_url, "commit": self.commit,
                "pinned": f"{self.repo_url}@{self.commit}", "tree_hash": self.tree_hash,
                "source_digest": self.source_digest, "license": self.license.license,
                "license_file": self.license.found_in, "license_found": self.license.found,
                "license_text": self.license.describe()}  # fmt: skip


def champion_source(competitor: Competitor, tree: Path) -> ChampionSource:
    """The open-source facts of ``competitor`` whose registered tree is at ``tree``."""
    return ChampionSource(competitor.name, competitor.repo_url, competitor.commit, competitor.tree_hash,
                          competitor.source_digest, detect_license(tree))


def champion_sources(settings: Settings, session: Session, names: Iterable[str], *, fetch: bool = True) -> dict[str, ChampionSource | str]:
    """Each named champion's open-source facts, or why its code is not at hand (the CLI's champions
    list, the API's and the dashboard's share it). ``fetch`` False: a tree the cache lost is not
    fetched again (a web page must not wait on a git host)."""
    sources: dict[str, ChampionSource | str] = {}
    for name in dict.fromkeys(names):
        competitor = get_competitor(session, name)
        if competitor is None:
            sources[name] = "no longer registered"
            continue
        try:
            sources[name] = champion_source(competitor, registered_tree(settings, competitor, fetch=fetch))
        except ExportError as error:
            sources[name] = str(error)
    return sources


def registered_tree(settings: Settings, competitor: Competitor, *, fetch: bool = True) -> Path:
    """The exported tree of the competitor's commit, fetched and exported again when the cache lost it;
    with ``fetch`` False, CodeNotStored instead."""
    checkout = checkout_path(settings, competitor.commit)
    if not checkout.is_dir() and not fetch:
        raise CodeNotStored(f"the code of {competitor.name} (commit {competitor.commit}) is not stored on this server; "
                            f"an operator's `trainarena champions export-code {competitor.name} DIR` fetches it again")
    if not checkout.is_dir():
        try:
            register(settings, name=competitor.name, repo=competitor.repo_url, commit=competitor.commit)
        except RegistrationError as error:
            # Its repository is not named (nor in git's words): the reason reaches competitors' keys (GET
            # /v1/champions), and an operator's champion may be a folder on the server.
            why = str(error)
            for named in (competitor.repo_url, competitor.repo_url.removeprefix("file://")):
                why = why.replace(named, "its repository")
            raise ExportError(f"the code of {competitor.name} (commit {competitor.commit}) is not cached and cannot be "
                              f"fetched again from its repository (`trainarena competitor show {competitor.name}` names it): {why}") from None
    return checkout


def tree_source_digest(root: Path, settings: Settings) -> str:
    """The source digest of the files under ``root``, with registration's rules (submissions.digest)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    rules = settings.registration
    return source_digest(((p.relative_to(root).as_posix(), p.read_bytes()) for p in files),
                         ignore_suffixes=rules.digest_ignore_suffixes, ignore_names=rules.digest_ignore_names)  # fmt: skip


@dataclass(frozen=True)
class CheckedTree:
    """A folder holding a competitor's code, its tree hash and source digest recomputed from its files
    to be compared with those recorded at registration."""

    folder: Path
    source: ChampionSource
    files: int
    tree_hash: str  # recomputed from the folder's files
    source_digest: str  # recomputed from the folder's files

    @property
    def tree_matches(self) -> bool:
        return self.tree_hash == self.source.tree_hash

    @property
    def digest_matches(self) -> bool:
        return self.source_digest == self.source.source_digest

    @property
    def verified(self) -> bool:
        return self.tree_matches and self.digest_matches

    def to_json(self) -> dict[str, Any]:
        return {"destination": str(self.folder), **self.source.to_json(), "files": self.files,
                "written_tree_hash": self.tree_hash, "written_source_digest": self.source_digest,
                "verified": self.verified}  # fmt: skip


def check_tree(settings: Settings, competitor: Competitor, folder: Path) -> CheckedTree:
    """The competitor's code in ``folder`` with its tree hash and source digest recomputed from its files
    (an export's copy, or the stored tree a download is served from)."""
    files = sum(1 for p in folder.rglob("*") if p.is_file() or p.is_symlink())
    return CheckedTree(folder, champion_source(competitor, folder), files, git_tree_hash(folder), tree_source_digest(folder, settings))


def export_code(settings: Settings, competitor: Competitor, destination: Path) -> CheckedTree:
    """Write the competitor's registered tree to ``destination`` (absent or empty) and recompute its tree
    hash and source digest from what was written."""
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ExportError(f"{destination} exists and is not an empty folder; name a new or empty one")
    tree = registered_tree(settings, competitor)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tree, destination, symlinks=True, dirs_exist_ok=True)
    return check_tree(settings, competitor, destination)
