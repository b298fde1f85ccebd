"""The demo tournament: the example competitors, the tiny offline model and the synthetic instruct
datasets, set up in the store so that ``orchestrator.drive`` plays them like any tournament; or, with
``demo --examples FOLDER``, the competitor repositories in a folder of the competitor's own.

Set-up is idempotent: example repositories are made once (their commits are reproducible), competitors
already registered are kept, and an unfinished demo tournament is resumed rather than replaced.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from trainarena.assets import Assets
from trainarena.contract import TaskType
from trainarena.demo.example_repos import example_commit, make_example_repo
from trainarena.engine.model import Stage
from trainarena.runs import TaskSource
from trainarena.settings import Settings, TaskMixRules
from trainarena.store import Store, StoreError, create_tournament, current_champion, get_competitor, list_tournaments
from trainarena.submissions import RegistrationError, normalize_repo_url
from trainarena.submissions.service import register_competitor
from trainarena.submissions.worktree import own_head
from trainarena.tasks.base import TaskDefinition

DEMO_PREFIX = "demo-text-"
# The reigning champion the demo's challenger must dethrone in the boss round: a naive script on
# TRL's defaults, so the boss round shows the margin rule at work against a real, beatable method.
DEFAULT_CHAMPION = "trl_defaults"
# Honest scripts first, then the ones that show the platform's defences; all of them enter.
DEMO_ENTRANTS = ("baseline", "torchloop", "instruct_only", "crasher", "hostile", "overtime")
TEXT_DEMO_BUDGET_SECONDS = 30.0  # each run's budget unless `trainarena demo --budget` says otherwise


@dataclass(frozen=True)
class DemoSetup:
    tournament_id: int
    tournament_name: str
    resumed: bool
    registered: tuple[str, ...]  # competitors newly registered by this call
    left_out: tuple[tuple[str, str], ...] = ()  # (folder, why) of each folder of a given examples folder that does not play
    warnings: tuple[str, ...] = ()  # the registrations' of that folder's repositories (uncommitted edits left out, copies)


@dataclass
class _Folders:
    """What :func:`_enter_competitor_folders` made of a folder of competitor repositories."""

    playing: list[str] = field(default_factory=list)  # the names that can play the demo's kind
    registered: list[str] = field(default_factory=list)  # newly registered
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (folder, why) of each of the others
    warnings: list[str] = field(default_factory=list)  # those newly registered's (RegisteredResult.warnings)


def examples_root() -> Path:
    """``examples/competitors`` of the source tree (the demo runs from a checkout, as the README says)."""
    return Path(__file__).resolve().parents[3] / "examples" / "competitors"


def demo_task_source(assets: Assets, budget_seconds: float, mix: TaskMixRules | None = None) -> TaskSource:
    """Each task draws its type from the task mix and one of that type's synthetic datasets, both from
    the task's seed, on the tiny offline LLaMA. The boss round cycles through the enabled types (heaviest
    first), so with at least as many boss tasks as enabled types every type is played there."""
    enabled = (mix or TaskMixRules()).enabled()
    by_type = {name: assets.datasets_of(name) for name, _ in enabled}
    missing = [name for name, datasets in by_type.items() if not datasets]
    if missing:
        raise StoreError(f"the offline assets have no dataset for task type(s) {missing}; rebuild them")

    def source(kind: str, stage: Stage, match_id: str, task_index: int, seed: int) -> TaskDefinition:
        rng = random.Random(seed)
        if stage is Stage.BOSS:
            task_type = enabled[task_index % len(enabled)][0]
        else:
            task_type = rng.choices([name for name, _ in enabled], weights=[w for _, w in enabled])[0]
        dataset = rng.choice(by_type[task_type])
        return TaskDefinition(
            name=f"{dataset.name}-{seed % 10_000:04d}",
            task_type=TaskType(task_type),
            base_model=str(assets.tiny_llama),
            dataset=dataset.dataset_spec(),
            budget_seconds=budget_seconds,
            seed=seed,
        )

    return source


def _register_examples(store: Store, settings: Settings, examples: Path, names: tuple[str, ...]) -> tuple[str, ...]:
    repos = settings.data_dir / "example-repos"
    newly = []
    for name in names:
        with store.transaction() as session:
            if get_competitor(session, name) is not None:
                continue
            repo = repos / name
            commit = example_commit(repo)  # made by an earlier, interrupted set-up
            if commit is None:
                if repo.exists():  # not a committed example repository: junk of a set-up killed midway
                    shutil.rmtree(repo)
                repo, commit = make_example_repo(examples / name, repo)
            register_competitor(session, settings, name=name, repo=str(repo), commit=commit)
            newly.append(name)
    return tuple(newly)


def _enter_competitor_folders(store: Store, settings: Settings, folder: Path, kind: str) -> _Folders:
    """Register each folder of ``folder`` that is a competitor's repository (a git repository with a
    valid trainarena.toml) at its HEAD commit, under the folder's name; one registered already from the
    same repository is kept as it is."""
    found = _Folders()
    for competitor_folder in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name = competitor_folder.name
        commit = own_head(competitor_folder)
        if commit is None:
            found.left_out.append((name, "not a git repository with a commit of its own: the demo registers a folder's HEAD "
                                   "commit, as `trainarena competitor add` does (git init, git add -A, git commit in it)"))
            continue
        with store.transaction() as session:
            competitor = get_competitor(session, name)
            try:
                if competitor is None:
                    result = register_competitor(session, settings, name=name, repo=str(competitor_folder), commit=commit)
                    competitor = result.competitor
                    found.registered.append(name)
                    found.warnings += result.warnings
                elif competitor.repo_url != normalize_repo_url(str(competitor_folder)):
                    raise RegistrationError(f"a competitor named {name!r} is registered already, from {competitor.repo_url}; "
                                            "rename the folder or run the demo in a data directory of its own")
            except RegistrationError as error:  # no trainarena.toml, a bad one, forbidden content, a copy...
                found.left_out.append((name, str(error)))
                continue
        if competitor.kind not in (None, "both", kind):
            found.left_out.append((name, f"its trainarena.toml declares {competitor.kind} task types only, not {kind}"))
            continue
        found.playing.append(name)
    return found


def set_up_demo(store: Store, settings: Settings, *, seed: int, examples: Path | None = None, kind: str = "text") -> DemoSetup:
    """Register the competitors and return the demo tournament to drive: the unfinished one if any, else
    a new one (whose boss round faces the reigning champion of ``kind``, or the default champion). The
    competitors are the bundled examples by name, or with ``examples`` every competitor repository in
    that folder (:func:`_enter_competitor_folders`); a folder named as the default champion defends."""
    prefix, default_champion, cast = _demo_kind(kind)
    if examples is None:
        folders = _Folders(playing=[*cast, default_champion])
        folders.registered = list(_register_examples(store, settings, examples_root(), tuple(folders.playing)))
    else:
        folders = _enter_competitor_folders(store, settings, examples, kind)
    entrants = [name for name in folders.playing if name != default_champion]
    if not entrants:
        why = "".join(f"; {name}: {reason}" for name, reason in folders.left_out)
        raise StoreError(f"no competitor repository to play under {examples} (each folder that is a git repository "
                         f"with a valid trainarena.toml plays; one named {default_champion} defends){why}")
    has_default_champion = default_champion in folders.playing
    said = (tuple(folders.registered), tuple(folders.left_out), tuple(folders.warnings))
    with store.transaction() as session:
        demos = [t for t in list_tournaments(session) if t.name.startswith(prefix)]
        unfinished = [t for t in demos if t.status not in ("finished", "cancelled")]
        if unfinished:
            return DemoSetup(unfinished[-1].id, unfinished[-1].name, True, *said)
        name = f"{prefix}{len(demos) + 1}"
        # Once a champion of this kind has been crowned, later demos face it; until then, the default one.
        reigning = None if current_champion(session, kind) or not has_default_champion else default_champion
        tournament = create_tournament(session, name=name, kind=kind, seed=seed + len(demos), entrants=entrants, champion=reigning)
        return DemoSetup(tournament.id, name, False, *said)


def _demo_kind(kind: str) -> tuple[str, str, tuple[str, ...]]:
    """(tournament name prefix, default champion, the entrants' folder names) of a text or image demo."""
    if kind == "image":
        from trainarena.demo.image import IMAGE_DEFAULT_CHAMPION, IMAGE_DEMO_ENTRANTS, IMAGE_DEMO_PREFIX

        return IMAGE_DEMO_PREFIX, IMAGE_DEFAULT_CHAMPION, IMAGE_DEMO_ENTRANTS
    if kind != "text":
        raise StoreError(f"demo kind {kind!r} is not text or image")
    return DEMO_PREFIX, DEFAULT_CHAMPION, DEMO_ENTRANTS
