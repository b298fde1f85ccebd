"""Evaluator throughput vs a bare batched forward pass on the same model and hidden data.

Run from the repository root: ``.venv/bin/python -m benchmarks.eval_speed [--cache-dir DIR] [--json]``.
Prints tokens/s of both and their ratio (target >= 0.8). Both exclude process start and model loading; the evaluator
number includes tokenization, padding and the loss, the bare one only ``model(input_ids, attention_mask)``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

TARGET = 0.8  # issue 17: the evaluator at least 80% of a bare forward pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, help="where the offline assets are built or found (default: the settings' cache)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    import torch

    from trainarena.assets import ensure_assets
    from trainarena.settings import Settings
    from trainarena.tasks import TaskDefinition, get_task_type
    from trainarena.tasks.instruct import InstructDatasetSpec
    from trainarena.tasks.instruct.evaluation import encode_rows
    from trainarena.tasks.text.rows import read_jsonl
    from trainarena.tasks.text.scoring import example_losses, load_scoring_model, load_tokenizer, pad_id

    settings = Settings()
    assets = ensure_assets(args.cache_dir or settings.cache_dir)
    name = "letter_count_custom"
    task = TaskDefinition(name, "instruct", str(assets.tiny_llama), {"source": str(assets.datasets[name]), **assets.dataset_fields[name]}, 1)
    scratch = Path(tempfile.mkdtemp())
    prepared = get_task_type("instruct").prepare(task, scratch / "train", scratch / "hidden", settings)
    rows = read_jsonl(prepared.train_file)  # the larger split, for a steadier measurement
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(task.base_model)
    model = load_scoring_model(assets.tiny_llama, task.base_model, device)
    spec = InstructDatasetSpec.from_dict(prepared.dataset_spec)
    batch = settings.data.eval_batch_size

    def evaluator() -> int:
        encoded = encode_rows(spec, rows, tokenizer, settings.data.eval_max_length)
        example_losses(model, encoded, batch, pad_id(tokenizer), device)
        return sum(len(ids) for ids, _ in encoded)  # input tokens processed, the bare pass's unit too

    encoded = encode_rows(spec, rows, tokenizer, settings.data.eval_max_length)
    ordered = sorted(encoded, key=lambda e: -len(e[0]))  # the same batches the evaluator forms
    batches = []
    for start in range(0, len(ordered), batch):
        chunk = [ids for ids, _ in ordered[start : start + batch]]
        width = max(map(len, chunk))
        ids = torch.tensor([c + [pad_id(tokenizer)] * (width - len(c)) for c in chunk], device=device)
        mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in chunk], device=device)
        batches.append((ids, mask))

    def bare() -> int:
        with torch.inference_mode():
            for ids, mask in batches:
                model(input_ids=ids, attention_mask=mask)
        return sum(len(i) for i, _ in encoded)

    results = {}
    for label, fn in (("bare forward", bare), ("evaluator", evaluator), ("bare forward", bare), ("evaluator", evaluator)):
        started = time.perf_counter()
        tokens = fn()
        results[label] = max(results.get(label, 0.0), tokens / (time.perf_counter() - started))  # best of 2
    ratio = results["evaluator"] / results["bare forward"]
    if args.json:
        print(json.dumps({"device": device.type, "examples": len(rows), "batch": batch, "threads": torch.get_num_threads(),
                          "evaluator_tokens_per_s": round(results["evaluator"]), "forward_tokens_per_s": round(results["bare forward"]),
                          "evaluator_over_forward": round(ratio, 3), "target": TARGET, "met": ratio >= TARGET}))
        return 0
    print(f"device={device.type} examples={len(rows)} batch={batch} threads={torch.get_num_threads()}")
    for label, rate in results.items():
        print(f"{label:>13}: {rate:,.0f} tokens/s")
    print(f"ratio evaluator/bare: {ratio:.2f} (target >= {TARGET})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
