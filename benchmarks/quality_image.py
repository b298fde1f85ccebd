"""Image quality: the house image script (image_baseline) against a LoRA script on diffusers' example
defaults (image_defaults) on the same person and style tasks, budgets and seeds, scored on the hidden
images by the image plugin's own img2img evaluation (pixel MSE; lower is better). Prints each loss and
the ratio house / defaults.

Scripts run as subprocesses with the contract's arguments and environment (not sandboxed: this
measures training quality, not isolation), one at a time so they do not share the CPU.

Measured (--budget 40, 2 shared CPU cores): before the box-codec VAE, house 0.07339 vs defaults 0.07356
(ratio 0.997: the trained VAE's reconstruction error was the whole score); after it, person_zxq 0.01784
vs 0.01896 (0.941), style_qrt 0.01803 vs 0.02006 (0.899), mean ratio 0.920.

Run from the repo root: ``.venv/bin/python -m benchmarks.quality_image [--budget 45] [--tasks person_zxq style_qrt]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchmarks.script_runner import run_contract_script
from trainarena.assets.image import ensure_image_assets
from trainarena.contract import TaskType
from trainarena.settings import Settings
from trainarena.tasks import TaskDefinition, get_task_type

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPETITORS = REPO_ROOT / "examples" / "competitors"
HOUSE, DEFAULTS = "image_baseline", "image_defaults"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=45.0)
    parser.add_argument("--tasks", nargs="+", default=["person_zxq", "style_qrt"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="trainarena-quality-image-") as scratch:
        root = Path(scratch)
        settings = Settings(data_dir=root / "data")
        assets = ensure_image_assets(Settings().assets_dir)  # the installation's cache: built once
        plugin = get_task_type("image")
        ratios = []
        for name in args.tasks:
            dataset = {"source": str(assets.datasets[name]), "kind": assets.dataset_kinds[name], "model_type": "sd"}
            task = TaskDefinition(name, TaskType.IMAGE, str(assets.tiny_sd), dataset, args.budget, args.seed)
            prepared = plugin.prepare(task, root / name / "train", root / name / "hidden", settings)
            losses = {}
            for script in (HOUSE, DEFAULTS):
                output = root / name / script
                output.mkdir(parents=True)
                code, _wall, note = run_contract_script(COMPETITORS / script / "train.py", TaskType.IMAGE, assets.tiny_sd,
                                                        root / name / "train" / "train.zip", output, args.budget, args.seed,
                                                        {"OMP_NUM_THREADS": str(os.cpu_count() or 1)})
                evaluation = plugin.evaluate(task, prepared, output, settings) if code == 0 else None
                losses[script] = evaluation.score if evaluation else None
                shown = f"{losses[script]:.5f}" if losses[script] is not None else f"failed ({evaluation.failure if evaluation else note})"
                print(f"{name:12s} {script:15s} loss {shown}   [{note}]", flush=True)
            if None not in losses.values():
                ratios.append(losses[HOUSE] / losses[DEFAULTS])
                print(f"{name:12s} ratio house/defaults {ratios[-1]:.3f}", flush=True)
        if ratios:
            print(f"mean ratio house/defaults over {len(ratios)} tasks: {sum(ratios) / len(ratios):.3f} (lower is better for the house)")
    return 0 if ratios else 1


if __name__ == "__main__":
    raise SystemExit(main())
