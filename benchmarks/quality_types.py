"""The quality benchmark for the dpo, grpo and chat task types: the house baseline against TRL's
defaults (``benchmarks/trl_defaults_types.py``) on the same synthetic task, budget and seed, scored on
the hidden split by each task plugin's own evaluation; prints each score and the ratio per type.

Ratios are oriented so that above 1 means the house is better: defaults/house for the lower-is-better
types (dpo loss, chat loss), and for grpo the difference house - defaults (rewards can be 0 or negative,
so a ratio would not mean anything).

Run from the repo root: ``.venv/bin/python -m benchmarks.quality_types [--budget 45] [--types dpo chat grpo]``

Measured 2026-11-26, 2-core CPU, ``OMP_NUM_THREADS=1 ... --budget 30`` (one run at a time)::

    type   direction     base    house  defaults  house advantage
    dpo    lower       0.6931   0.6731    0.6931  defaults/house = 1.030
    grpo   higher      0.0267   0.0723    0.0266  house - defaults = +0.0457
    chat   lower       7.7591   2.5553    7.0286  defaults/house = 2.751

(TRL's default learning rates, 1e-6 for DPO and GRPO, barely move a model in 30 s; its GRPO defaults
also ran 7.5 s past the budget, which the platform would have killed.)
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchmarks.script_runner import run_contract_script
from trainarena.assets import ensure_assets
from trainarena.contract import TaskType
from trainarena.settings import Settings
from trainarena.tasks import TaskDefinition, get_task_type

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {
    "house": REPO_ROOT / "examples" / "competitors" / "baseline" / "train.py",
    "trl-defaults": REPO_ROOT / "benchmarks" / "trl_defaults_types.py",
}


def benchmark_type(task_type: str, assets, budget: float, seed: int, settings: Settings) -> dict[str, float | None]:
    dataset = assets.datasets_of(task_type)[0]
    task = TaskDefinition(dataset.name, TaskType(task_type), str(assets.tiny_llama), dataset.dataset_spec(), budget, seed)
    plugin = get_task_type(task_type)
    scores: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory(prefix=f"quality-{task_type}-") as scratch:
        root = Path(scratch)
        prepared = plugin.prepare(task, root / "train", root / "hidden", settings)
        scores["(base model)"] = plugin.evaluate(task, prepared, assets.tiny_llama, settings).score
        for name, script in SCRIPTS.items():
            output = root / "out" / name
            output.mkdir(parents=True)
            code, wall, note = run_contract_script(script, TaskType(task_type), assets.tiny_llama, prepared.train_file, output, budget,
                                                   seed, {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
            score = plugin.evaluate(task, prepared, output, settings).score if code == 0 else None
            scores[name] = score
            shown = "failed" if score is None else f"{score:.4f}"
            print(f"  {task_type:<6} {name:<13} score {shown:>8}  wall {wall:5.1f}s  {note}", flush=True)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=45.0, help="seconds per run (imports included)")
    parser.add_argument("--types", nargs="+", default=["dpo", "grpo", "chat"], choices=["dpo", "grpo", "chat"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".trainarena" / "cache" / "assets")
    args = parser.parse_args()
    settings, assets = Settings(), ensure_assets(args.cache_dir)
    print(f"{'type':<6} {'direction':<9} {'base':>8} {'house':>8} {'defaults':>9}  house advantage")
    rows = [(t, benchmark_type(t, assets, args.budget, args.seed, settings)) for t in args.types]
    for task_type, scores in rows:
        house, defaults, base = scores["house"], scores["trl-defaults"], scores["(base model)"]
        direction = get_task_type(task_type).direction.value
        if house is None or defaults is None:
            advantage = "n/a (a run failed)"
        elif direction == "lower":
            advantage = f"defaults/house = {defaults / house:.3f}"
        else:
            advantage = f"house - defaults = {house - defaults:+.4f}"
        fmt = lambda v: "failed" if v is None else f"{v:.4f}"  # noqa: E731
        print(f"{task_type:<6} {direction:<9} {fmt(base):>8} {fmt(house):>8} {fmt(defaults):>9}  {advantage}")


if __name__ == "__main__":
    main()
