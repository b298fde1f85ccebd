"""The running side of ``benchmarks.quality``: which scripts contend on each task type, and one
(type, task, seed) played: the task prepared once with the seed, the base model scored once, then
every contender trained with the contract's arguments (``script_runner``, unsandboxed, one at a time)
and scored by the task plugin's own ``evaluate()``."""

from __future__ import annotations

import re
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from benchmarks.script_runner import run_contract_script
from trainarena.contract import TaskType
from trainarena.settings import Settings
from trainarena.tasks import TaskDefinition, get_task_type

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPETITORS = REPO_ROOT / "examples" / "competitors"
# Examples that show the platform's defences (crash, sandbox attacks, ignoring the budget): their
# scores say nothing about a training method, so they never contend here.
ADVERSARIAL_EXAMPLES = frozenset({"crasher", "hostile", "overtime"})
TEXT_TYPES = ("instruct", "chat", "dpo", "grpo")
ALL_TYPES = (*TEXT_TYPES, "image")
INSTRUCT_TASKS = ("arithmetic", "strings")  # the assets' synthetic instruct datasets
# Both DPO datasets: on the arithmetic near misses the tiny model barely learns the preference
# (docs/benchmarks.md); the unit conversions' rejected answers (x10, x100, unconverted) are learnable.
DPO_TASKS = ("preference_arithmetic", "preference_units_custom")
IMAGE_TASKS = ("person_zxq", "style_qrt")  # one person and one style task on the tiny SD pipeline
BASE = "(base model)"  # the untrained model, scored as a run would be
STEPS_PATTERN = re.compile(r"(\d+) steps")  # the count in a script's summary line, e.g. "baseline: 212 steps, ..."


@dataclass(frozen=True)
class Contender:
    name: str
    script: Path
    role: str  # "house", "defaults" or "example"


@dataclass(frozen=True)
class RunScore:
    contender: str
    seed: int
    score: float | None  # None: failed (see failure)
    steps: int | None
    wall_seconds: float
    failure: str = ""


def house_and_defaults(task_type: str) -> tuple[Contender, Contender]:
    """The house script and the library-defaults reference of a task type."""
    if task_type == "image":
        return (Contender("image_baseline", COMPETITORS / "image_baseline" / "train.py", "house"),
                Contender("image_defaults", COMPETITORS / "image_defaults" / "train.py", "defaults"))
    house = Contender("baseline", COMPETITORS / "baseline" / "train.py", "house")
    if task_type == "instruct":
        return house, Contender("trl_defaults", COMPETITORS / "trl_defaults" / "train.py", "defaults")
    return house, Contender("trl_defaults_types", REPO_ROOT / "benchmarks" / "trl_defaults_types.py", "defaults")


def honest_examples(task_type: str, competitors: Path = COMPETITORS) -> list[Contender]:
    """Every example whose trainarena.toml declares the type, but for the adversarial ones and the
    house and defaults scripts of any type (they contend in their own roles)."""
    reserved = {c.name for t in ALL_TYPES for c in house_and_defaults(t)} | ADVERSARIAL_EXAMPLES
    found = []
    for manifest in sorted(competitors.glob("*/trainarena.toml")):
        name = manifest.parent.name
        declared = tomllib.loads(manifest.read_text())["trainarena"]
        if name not in reserved and task_type in declared.get("task_types", ()):
            found.append(Contender(name, manifest.parent / declared.get("entrypoint", "train.py"), "example"))
    return found


def contenders(task_type: str, only: list[str] | None) -> list[Contender]:
    """House, defaults, then the honest examples (narrowed to ``only`` when given)."""
    examples = [c for c in honest_examples(task_type) if not only or c.name in only]
    return [*house_and_defaults(task_type), *examples]


def task_names(task_type: str, text_assets) -> list[str]:
    if task_type == "image":
        return list(IMAGE_TASKS)
    if task_type == "instruct":
        return list(INSTRUCT_TASKS)
    if task_type == "dpo":
        return list(DPO_TASKS)
    return [text_assets.datasets_of(task_type)[0].name]


def task_definition(task_type: str, name: str, assets, budget: float, seed: int) -> tuple[TaskDefinition, Path]:
    """The task and the model directory its scripts train from."""
    if task_type == "image":
        dataset = {"source": str(assets.datasets[name]), "kind": assets.dataset_kinds[name],
                   "model_type": assets.manifest["model_type"]}
        return TaskDefinition(name, TaskType.IMAGE, str(assets.tiny_sd), dataset, budget, seed), assets.tiny_sd
    (dataset,) = [d for d in assets.datasets_of(task_type) if d.name == name]
    return TaskDefinition(name, TaskType(task_type), str(assets.tiny_llama), dataset.dataset_spec(), budget, seed), assets.tiny_llama


def play_seed(task_type: str, name: str, seed: int, assets, scripts: list[Contender], budget: float,
              thread_caps: dict[str, str], settings: Settings, cpu_clock_threads: int | None = None) -> list[RunScore]:
    """The base model's score (as a run named ``BASE``, first) and every contender's run on one task and
    seed (on the CPU clock with ``cpu_clock_threads``: script_runner). Image tasks score LoRA artifacts,
    so there the base model's evaluation fails with that reason."""
    plugin = get_task_type(task_type)
    task, model_dir = task_definition(task_type, name, assets, budget, seed)
    with tempfile.TemporaryDirectory(prefix=f"quality-{task_type}-{name}-") as scratch:
        root = Path(scratch)
        prepared = plugin.prepare(task, root / "train", root / "hidden", settings)
        base = plugin.evaluate(task, prepared, model_dir, settings)
        progress(f"{task_type} {name} seed {seed}: base model {_shown(base.score)} {base.failure or ''}")
        runs = [RunScore(BASE, seed, base.score, None, 0.0, base.failure or "")]
        for contender in scripts:
            output = root / "out" / contender.name
            output.mkdir(parents=True)
            code, wall, last_line = run_contract_script(contender.script, TaskType(task_type), model_dir, prepared.train_file,
                                                        output, budget, seed, thread_caps, cpu_clock_threads)
            if code != 0:
                run = RunScore(contender.name, seed, None, None, wall, f"exit {code}: {last_line}")
            else:
                evaluation = plugin.evaluate(task, prepared, output, settings)
                steps = STEPS_PATTERN.search(last_line)
                run = RunScore(contender.name, seed, evaluation.score, int(steps.group(1)) if steps else None, wall,
                               evaluation.failure or "")
            runs.append(run)
            progress(f"  {contender.name:<20} {_shown(run.score):>10}  wall {wall:5.1f}s  {run.failure or last_line}")
    return runs


def progress(line: str) -> None:
    """Progress goes to stderr, so that ``--json`` keeps stdout one document."""
    print(line, file=sys.stderr, flush=True)


def _shown(score: float | None) -> str:
    return "failed" if score is None else f"{score:.4g}"
