"""How noisy is the GRPO score, and what does a steadier one cost? (issue 17, part 3)

Prepares the assets' GRPO task once (``--task-seed``), trains the house script on it once (CPU clock,
the demo's budget, one thread; ``--script`` another one; ``--artifact DIR`` keeps it or scores it), then scores the base model and that
artifact with ``--eval-seeds`` sampling seeds at each (prompts, samples per prompt) setting, e.g.
``50x1 50x4``. The hidden split has as many prompts as it has: a larger N scores them all.
Per setting it reports the mean and sd over the seeds of the base's score, the artifact's, and their
paired difference (the same seed for both, as the platform scores every artifact with one seed), and
the evaluator's own seconds per evaluation (details.seconds: sampling, log-probs and the reward
sandbox, not the model loading). Scored in this process on one thread, as the evaluation child is.

Run from the repo root:
``.venv/bin/python -m benchmarks.grpo_scorer_noise [--settings 50x1 50x8] [--eval-seeds 8] [--json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from benchmarks.quality_runs import COMPETITORS, progress, task_definition
from benchmarks.script_runner import run_contract_script
from trainarena.contract import TaskType
from trainarena.demo.text import TEXT_DEMO_BUDGET_SECONDS
from trainarena.settings import Settings
from trainarena.tasks import get_task_type
from trainarena.tasks.evaluate_worker import evaluate_request
from trainarena.tasks.grpo import sampling_settings
from trainarena.tasks.grpo.rewards import RewardSandbox

FIRST_EVAL_SEED = 1000  # the seeds measured: FIRST_EVAL_SEED .. + --eval-seeds - 1


def score(prepared, task, artifact: Path, settings: Settings) -> tuple[float, float]:
    """(score, evaluator seconds) of one artifact under ``settings``' GRPO sampling rules."""
    rules = settings.data
    result = evaluate_request({
        "task_type": "grpo", "hidden_file": str(prepared.hidden_file), "dataset_spec": prepared.dataset_spec,
        "artifact_dir": str(artifact), "base_model": task.base_model, "kl_coef": rules.grpo_kl_coef,
        "sampling": sampling_settings(rules), "rules": rules.model_dump(),
        "reward_sandbox": RewardSandbox.from_rules(settings.sandbox, rules).to_dict(),
    })
    if result.get("score") is None:
        raise RuntimeError(f"evaluation failed: {result.get('failure')}")
    return float(result["score"]), float(result["details"]["seconds"])


def summary(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def measure(prepared, task, artifact: Path, setting: tuple[int, int], seeds: list[int], base: Settings) -> dict:
    prompts, samples = setting
    rows: dict[str, list[float]] = {"base": [], "trained": [], "difference": [], "seconds": []}
    for seed in seeds:
        settings = base.model_copy(update={"data": base.data.model_copy(update={
            "grpo_eval_prompts": prompts, "grpo_eval_samples": samples, "grpo_eval_seed": seed})})
        (b, b_seconds), (t, t_seconds) = score(prepared, task, Path(task.base_model), settings), score(prepared, task, artifact, settings)
        rows["base"].append(b)
        rows["trained"].append(t)
        rows["difference"].append(t - b)
        rows["seconds"] += [b_seconds, t_seconds]
        progress(f"  {prompts}x{samples} seed {seed}: base {b:.4f}  trained {t:.4f}  diff {t - b:+.4f}  "
                 f"{b_seconds:.1f}+{t_seconds:.1f} s")
    return {"setting": f"{prompts}x{samples}", "seeds": seeds, "values": rows,
            **{name: summary(values) for name, values in rows.items()}}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["50x1", "50x8"],
                        help="PROMPTSxSAMPLES each (default: the hidden split's 50 prompts, one completion each as "
                             "before trainarena 0.3.0, then 8 as since)")
    parser.add_argument("--eval-seeds", type=int, default=8)
    parser.add_argument("--task-seed", type=int, default=1, help="the task's split and the training run's seed")
    parser.add_argument("--artifact", type=Path, help="the trained model scored; the script trains it there first "
                        "when the folder does not exist (default: a scratch folder)")
    parser.add_argument("--script", type=Path, default=COMPETITORS / "baseline" / "train.py",
                        help="the script trained (default: the house one; its guard may save the base model)")
    parser.add_argument("--budget", type=float, default=TEXT_DEMO_BUDGET_SECONDS)
    parser.add_argument("--json", action="store_true")
    return parser


def parse_settings(settings: list[str]) -> list[tuple[int, int]]:
    """``PROMPTSxSAMPLES`` strings -> (prompts, samples per prompt)."""
    return [tuple(int(x) for x in s.lower().split("x")) for s in settings]


def main(argv: list[str] | None = None) -> int:
    import torch

    from trainarena.assets import ensure_assets

    args = build_parser().parse_args(argv)
    settings = parse_settings(args.settings)
    torch.set_num_threads(1)
    base = Settings()
    assets = ensure_assets(base.assets_dir)
    name = assets.datasets_of("grpo")[0].name
    task, model_dir = task_definition("grpo", name, assets, args.budget, args.task_seed)
    seeds = list(range(FIRST_EVAL_SEED, FIRST_EVAL_SEED + args.eval_seeds))
    with tempfile.TemporaryDirectory(prefix="grpo-scorer-noise-") as scratch:
        root = Path(scratch)
        prepared = get_task_type("grpo").prepare(task, root / "train", root / "hidden", base)
        artifact = args.artifact or root / "out"
        if not artifact.exists():
            artifact.mkdir(parents=True)
            code, wall, line = run_contract_script(args.script, TaskType.GRPO, model_dir,
                                                   prepared.train_file, artifact, args.budget, args.task_seed, cpu_clock_threads=1)
            progress(f"{args.script}: exit {code}, {wall:.0f} s wall: {line}")
            if code != 0:
                return 1
        results = [measure(prepared, task, artifact, setting, seeds, base) for setting in settings]
    if args.json:
        print(json.dumps({"task_seed": args.task_seed, "results": results}, indent=2))
        return 0
    print(f"{'setting':<9}{'base':>18}{'trained':>18}{'trained - base':>18}{'s / eval':>10}")
    for r in results:
        shown = [f"{r[k]['mean']:.4f} ± {r[k]['sd']:.4f}" for k in ("base", "trained", "difference")]
        print(f"{r['setting']:<9}{shown[0]:>18}{shown[1]:>18}{shown[2]:>18}{r['seconds']['mean']:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
