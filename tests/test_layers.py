"""Imports only go down: contract/settings <- engine <- tasks, store, execution, submissions <-
runs <- orchestrator, pipeline <- reporting, demo, workbench, operations, registry, jobs <- api, web <- cli. A module may import its own layer or lower ones, never higher."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import trainarena

PACKAGE = Path(trainarena.__file__).parent

LAYERS = {
    "contract": 0,
    "settings": 0,
    "wording": 0,  # how counts read in messages, for every layer (the engine's reasons included)
    "engine": 1,
    "assets": 2,
    "execution": 2,
    "store": 2,
    "tasks": 3,  # a task type may use the sandbox (untrusted reward code runs there)
    "submissions": 3,  # its thin service layer records registrations in the store
    "runs": 4,  # the types between the orchestrator and the pipeline, which are siblings
    "orchestrator": 5,
    "attempts": 5,  # an attempt's end in the store: shared by the orchestrator, jobs, ad-hoc runs and audits
    "run_slots": 5,  # how the orchestrator's driver schedules runs on its slots
    "early_runs": 5,  # runs of a foreseen round trained on free slots, adopted by its claim
    "stopped_attempts": 5,  # a stopped driver's attempts withdrawn, or left in a note for the next drive's recovery
    "round_tasks": 5,  # which task each place of a round plays (its seed, the task source)
    "tournament_steps": 5,  # the engine's decisions written to the store: a round's rows, a finished tournament's outcome
    "pipeline": 5,
    "task_preparation": 5,  # a task's train and hidden splits prepared once, cached by its digest: for the pipeline and jobs
    "records": 5,  # signed statements, the transparency log, export/verify/audit: beside the orchestrator it records
    "reporting": 6,
    "demo": 6,
    "workbench": 6,  # trainarena run: ad-hoc runs and their references, over the pipeline and the store
    "operations": 6,  # stored tasks and pools, the tournament life cycle: over the pipeline, orchestrator and store
    "registry": 6,  # trained models, model cards, publishing: over the store and the run records
    "cluster": 6,  # where runs execute (here or on a Ray cluster): over the pipeline; jobs and the shells build executors with it
    "jobs": 6,  # customers' files and training jobs: over the pipeline, the store and the registry
    "api": 7,  # the HTTP shell over the layers below, beside the CLI
    "web": 7,  # the dashboard's pages, mounted into the API's app; reads through the layers below
    "cli": 8,  # the terminal shell; serves the API too (trainarena api, serve)
}


def _top(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trainarena."):
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names if alias.name.startswith("trainarena.")]
    return names


def test_every_top_level_module_has_a_layer() -> None:
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if not p.name.startswith("_")}
    tops = {t for t in tops if (PACKAGE / t).is_dir() or (PACKAGE / f"{t}.py").is_file()}
    assert tops <= set(LAYERS), f"give these a layer: {sorted(tops - set(LAYERS))}"


def test_the_readme_architecture_table_names_every_top_level_module() -> None:
    """The README's table says what each of these is for, and points here for the layers: one row (or a
    shared row) per module, and no module that is not here."""
    readme = (PACKAGE.parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| package | responsibility |") :].split("\n\n", 1)[0]
    named = {name for row in table.splitlines()[2:] for name in re.findall(r"`trainarena\.(\w+)`", row.split(" | ")[0])}
    assert named == set(LAYERS), f"in the README's table, not here: {sorted(named - set(LAYERS))}; missing: {sorted(set(LAYERS) - named)}"


def test_imports_only_go_down() -> None:
    upward = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        owner = relative.parts[0].removesuffix(".py")
        if owner.startswith("_"):
            continue
        for module in _imports(path):
            target = _top(module)
            if target and LAYERS[target] > LAYERS[owner]:
                upward.append(f"{relative} imports {module}")
    assert not upward, "\n".join(upward)


def _imports_of(package_part: str) -> set[str]:
    found: set[str] = set()
    target = PACKAGE / package_part
    for path in [target.with_suffix(".py")] if target.with_suffix(".py").is_file() else target.rglob("*.py"):
        found.update(_imports(path))
    return found


def test_pipeline_and_orchestrator_are_siblings() -> None:
    """Both take the run types from ``trainarena.runs``; neither imports the other."""
    assert not {m for m in _imports_of("pipeline") if m.startswith("trainarena.orchestrator")}
    assert not {m for m in _imports_of("orchestrator") if m.startswith("trainarena.pipeline")}


def test_task_plugins_do_not_import_each_other() -> None:
    """Each task type is one folder; what text types share lives in ``tasks/text``, not in a plugin."""
    from trainarena.tasks import plugin_module, registered_task_types

    plugins = {plugin_module(t).rsplit(".", 1)[1] for t in registered_task_types()}
    crossing = []
    for plugin in plugins:
        for module in _imports_of(f"tasks/{plugin}"):
            parts = module.split(".")
            if len(parts) > 2 and parts[1] == "tasks" and parts[2] in plugins and parts[2] != plugin:
                crossing.append(f"tasks/{plugin} imports {module}")
    assert not crossing, "\n".join(crossing)


def test_every_bwrap_command_is_built_in_execution() -> None:
    """Sandboxes are the execution package's job: nothing else spells out a bwrap command line."""
    builders = [p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py")
                if '"--unshare-all"' in p.read_text() and p.relative_to(PACKAGE).parts[0] != "execution"]
    assert not builders, builders
