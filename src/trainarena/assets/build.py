"""Builds the offline assets into a cache directory, once: tokenizer + tiny LLaMA in one
``save_pretrained`` directory, and the synthetic instruction datasets as JSONL.

Concurrency: a builder holds an exclusive ``fcntl`` lock on ``<cache>/.assets.lock`` and builds into a
temporary directory that is renamed into place when complete, so a reader never sees a half-built tree
and two processes never build at once. The directory name carries a stamp (the builder's version and a
hash of this package's source), so changing the builder code builds a fresh tree.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainarena.assets import model as model_builder
from trainarena.assets import synthetic, synthetic_types
from trainarena.assets import tokenizer as tokenizer_builder
from trainarena.assets.cache import ensure_built

ASSETS_VERSION = 2  # 2: datasets of the dpo, grpo and chat task types (manifest "typed_datasets")
MANIFEST = "manifest.json"
TINY_LLAMA = "tiny_llama"
VOCAB_SIZE = 3000  # small enough for a tiny embedding table, large enough that words are 1-3 tokens
GENERIC_LINES = 6000  # plain statements added to the pre-training text (see synthetic.generic_lines)


@dataclass(frozen=True)
class TaskDataset:
    """One built dataset of any text task type, with the dataset spec (less ``source``) it needs."""

    name: str
    task_type: str
    path: Path
    spec: dict[str, Any]

    def dataset_spec(self) -> dict[str, Any]:
        """The ``[dataset]`` table of a task on this dataset."""
        return {"source": str(self.path), **self.spec}


@dataclass(frozen=True)
class Assets:
    """Paths of a finished build. ``dataset_fields[name]`` is the field mapping of ``datasets[name]``."""

    root: Path
    tiny_llama: Path  # model + tokenizer (save_pretrained, safetensors)
    datasets: dict[str, Path]
    dataset_fields: dict[str, dict[str, str]]
    manifest: dict[str, Any]
    task_datasets: tuple[TaskDataset, ...] = ()  # every text dataset, instruct ones included, by task type

    def datasets_of(self, task_type: str) -> tuple[TaskDataset, ...]:
        return tuple(d for d in self.task_datasets if d.task_type == task_type)


def assets_stamp() -> str:
    """Version + hash of the builder's source: any code change gives a new stamp, hence a rebuild."""
    digest = hashlib.sha256(str(ASSETS_VERSION).encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    return f"v{ASSETS_VERSION}-{digest.hexdigest()[:12]}"


def ensure_assets(cache_dir: Path, seed: int = 0) -> Assets:
    """Return the built assets under ``cache_dir``, building them first if absent (idempotent, safe
    across processes)."""
    cache_dir = Path(cache_dir)
    final = cache_dir / f"assets-{assets_stamp()}-seed{seed}"
    ensure_built(final, MANIFEST, cache_dir / ".assets.lock", lambda staging: _build(staging, seed))
    return _load(final)


def _build(root: Path, seed: int) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    datasets_dir = root / "datasets"
    datasets_dir.mkdir()
    rows_by_name = {d.name: synthetic.generate(d, seed) for d in synthetic.DATASETS}
    for name, rows in rows_by_name.items():
        with open(datasets_dir / f"{name}.jsonl", "w", encoding="utf-8") as out:
            out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    typed_rows = {d.name: synthetic_types.generate_typed(d, seed) for d in synthetic_types.TYPED_DATASETS}
    for name, rows in typed_rows.items():
        with open(datasets_dir / f"{name}.jsonl", "w", encoding="utf-8") as out:
            out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    timings["datasets"] = time.monotonic() - started

    from pydoc_data.topics import topics

    generic_text = list(topics.values()) + synthetic.generic_lines(random.Random(seed), GENERIC_LINES)
    task_text = [" ".join(row.values()) for rows in rows_by_name.values() for row in rows]
    mark = time.monotonic()
    shape, plan = model_builder.TinyLlamaShape(), model_builder.PretrainPlan()
    tokenizer = tokenizer_builder.train_tokenizer(
        generic_text + task_text, VOCAB_SIZE, model_max_length=shape.max_position_embeddings
    )
    timings["tokenizer"] = time.monotonic() - mark

    mark = time.monotonic()
    # Pre-train on generic text only: the model learns the vocabulary, fine-tuning teaches the tasks.
    stream = _token_stream(tokenizer, generic_text)
    model = model_builder.build_model(tokenizer, shape, seed)
    pretraining = model_builder.pretrain(model, stream, plan, seed)
    model_builder.save_model(model, tokenizer, root / TINY_LLAMA)
    timings["model"] = time.monotonic() - mark
    timings["total"] = time.monotonic() - started

    manifest = {
        "stamp": assets_stamp(),
        "seed": seed,
        "tiny_llama": TINY_LLAMA,
        "parameters": sum(p.numel() for p in model.parameters()),
        "pretraining": pretraining | {"complete": pretraining["steps"] == plan.max_steps},
        "datasets": {
            d.name: {"file": f"datasets/{d.name}.jsonl", "rows": len(rows_by_name[d.name]), "fields": d.fields}
            for d in synthetic.DATASETS
        },
        "typed_datasets": {
            d.name: {"file": f"datasets/{d.name}.jsonl", "rows": len(typed_rows[d.name]), "task_type": d.task_type, "spec": d.spec}
            for d in synthetic_types.TYPED_DATASETS
        },
        "timings_seconds": {k: round(v, 2) for k, v in timings.items()},
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _token_stream(tokenizer, texts: list[str]) -> list[int]:
    encoded = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    return [token for ids in encoded for token in (*ids, tokenizer.eos_token_id)]


def _load(root: Path) -> Assets:
    manifest = json.loads((root / MANIFEST).read_text())
    code_specs = {d.name: d.spec for d in synthetic_types.TYPED_DATASETS}
    return Assets(
        root=root,
        tiny_llama=root / manifest["tiny_llama"],
        datasets={name: root / info["file"] for name, info in manifest["datasets"].items()},
        dataset_fields={name: dict(info["fields"]) for name, info in manifest["datasets"].items()},
        manifest=manifest,
        task_datasets=tuple(
            [TaskDataset(name, "instruct", root / info["file"], dict(info["fields"])) for name, info in manifest["datasets"].items()]
            + [
                # The spec is code (its rewards, their ranges): taken from this version of it, so that a
                # change to it needs no rebuild of the rows; the manifest's copy is what was built with.
                TaskDataset(name, info["task_type"], root / info["file"], code_specs.get(name, info["spec"]))
                for name, info in manifest.get("typed_datasets", {}).items()
            ]
        ),
    )
