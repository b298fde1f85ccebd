"""The copy rules at registration (submissions.copies through submissions.service): exact copies refused
or flagged, near-duplicates flagged, the closest competitor recorded, fingerprints cached per tree."""

from __future__ import annotations

import shutil
import time
from array import array
from pathlib import Path
from types import SimpleNamespace

import pytest
from disguised import disguised_copy
from submission_repos import MANIFEST, TRAIN_PY, RepoFactory

from trainarena.demo.example_repos import make_example_repo
from trainarena.demo.text import examples_root
from trainarena.settings import Settings
from trainarena.store import get_competitor, list_competitors, open_store
from trainarena.submissions import RegistrationError, checkout_path, register
from trainarena.submissions.copies import NEAR_DUPLICATE, check_copies, fingerprint_cache_path, report_warnings
from trainarena.submissions.service import RegisteredResult, register_competitor


def _register(settings: Settings, name: str, repo: Path, commit: str) -> RegisteredResult:
    with open_store(settings) as store, store.transaction() as session:
        return register_competitor(session, settings, name=name, repo=str(repo), commit=commit)


def _example(settings: Settings, example: str, folder: str | None = None) -> tuple[Path, str]:
    return make_example_repo(examples_root() / example, settings.data_dir.parent / "repos" / (folder or example))


def _names(settings: Settings) -> list[str]:
    with open_store(settings) as store, store.session() as session:
        return [c.name for c in list_competitors(session)]


def test_an_exact_copy_is_refused_by_default_naming_the_original(settings: Settings, make_repo: RepoFactory) -> None:
    original, original_sha = make_repo(name="original")
    tree_copy, tree_sha = make_repo(name="copy")  # the same files, another repository
    commented, commented_sha = make_repo({"trainarena.toml": MANIFEST, "train.py": "# mine\n" + TRAIN_PY}, name="commented")
    _register(settings, "alice", original, original_sha)

    for name, repo, sha, what in (("mallory", tree_copy, tree_sha, "the same tree"),
                                  ("eve", commented, commented_sha, "the same source code")):  # fmt: skip
        with pytest.raises(RegistrationError, match=f"'{name}' has {what}.*'alice'.*exact copy .* is refused"):
            _register(settings, name, repo, sha)

    assert _names(settings) == ["alice"]


def test_with_exact_copies_flagged_the_copy_enters_flagged(settings: Settings, make_repo: RepoFactory) -> None:
    flagging = settings.model_copy(update={"registration": settings.registration.model_copy(update={"exact_copies": "flag"})})
    original, original_sha = make_repo(name="original")
    copy, copy_sha = make_repo(name="copy")
    first = _register(flagging, "alice", original, original_sha)

    result = _register(flagging, "mallory", copy, copy_sha)

    assert first.report.closest is None and first.report.flag is None
    assert [m.kind for m in result.report.exact] == ["tree_hash"]
    assert (result.competitor.copy_flag, result.competitor.similar_to, result.competitor.similarity) == ("tree_hash", "alice", 1.0)
    warnings = report_warnings("mallory", result.report, flagging.registration)
    assert warnings[-1].startswith("mallory is flagged for the operator as an exact copy of competitor 'alice', similarity 1.00")


def test_a_disguised_copy_of_an_example_is_flagged_and_an_unrelated_one_is_not(settings: Settings, tmp_path: Path) -> None:
    _register(settings, "baseline", *_example(settings, "baseline"))
    _register(settings, "hostile", *_example(settings, "hostile"))
    disguised = disguised_copy(examples_root() / "baseline", tmp_path / "disguised")
    copy_repo, copy_sha = make_example_repo(disguised, tmp_path / "repos" / "disguised")

    copy = _register(settings, "mallory", copy_repo, copy_sha)
    other = _register(settings, "bob", *_example(settings, "instruct_only"))

    assert copy.report.exact == ()
    assert copy.report.closest is not None and copy.report.closest.name == "baseline"
    assert copy.report.closest.similarity >= settings.registration.similarity_flag_threshold
    assert copy.competitor.copy_flag == NEAR_DUPLICATE and copy.competitor.similar_to == "baseline"
    assert other.report.flag is None and other.competitor.copy_flag is None
    assert other.report.closest is not None and other.report.closest.similarity < 0.3  # always reported, even when low
    with open_store(settings) as store, store.session() as session:
        stored = get_competitor(session, "mallory")
        assert stored is not None and stored.copy_flag == NEAR_DUPLICATE and stored.similarity == copy.report.closest.similarity


def test_fingerprints_are_cached_per_tree_and_a_competitor_without_code_is_named(settings: Settings, make_repo: RepoFactory) -> None:
    repo, sha = make_repo({"trainarena.toml": MANIFEST, "train.py": TRAIN_PY * 3}, name="alice")
    alice = _register(settings, "alice", repo, sha).registration
    cache = fingerprint_cache_path(settings, alice.tree_hash)
    assert cache.is_file()
    shutil.rmtree(checkout_path(settings, sha))  # the cache alone still serves the comparison
    bob_repo, bob_sha = make_repo({"trainarena.toml": MANIFEST, "train.py": TRAIN_PY * 3 + "x = 1\n"}, name="bob")
    assert _register(settings, "bob", bob_repo, bob_sha).report.closest.name == "alice"

    cache.unlink()
    carol_repo, carol_sha = make_repo({"trainarena.toml": MANIFEST, "train.py": TRAIN_PY * 3 + "y = 2\n"}, name="carol")
    carol = _register(settings, "carol", carol_repo, carol_sha)

    assert carol.report.not_compared == ("alice",) and carol.report.closest.name == "bob"
    assert report_warnings("carol", carol.report, settings.registration)[-1] == (
        "carol was not compared with alice: their code is no longer on disk"
    )


def test_comparing_with_300_cached_competitors_is_fast(settings: Settings, make_repo: RepoFactory) -> None:
    repo, sha = make_repo()
    registration = register(settings, name="new", repo=str(repo), commit=sha)
    registered = []
    for index in range(300):  # 600 fingerprints each: a big training script's worth
        tree_hash = f"{index:040x}"
        cache = fingerprint_cache_path(settings, tree_hash)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(array("Q", range(index * 7, index * 7 + 600)).tobytes())
        registered.append(SimpleNamespace(name=f"c{index}", repo_url="u", commit=f"{index:040x}", tree_hash=tree_hash,
                                          source_digest=str(index)))  # fmt: skip

    started = time.perf_counter()
    report = check_copies(settings, registration, registered)
    elapsed = time.perf_counter() - started

    print(f"copy check against 300 cached competitors: {elapsed * 1000:.0f} ms")
    assert report.not_compared == () and report.closest is not None
    assert elapsed < 2.0  # measured ~60 ms on the 2-core development machine
