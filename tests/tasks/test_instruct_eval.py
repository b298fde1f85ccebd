"""Scoring instruct artifacts: the loss is the right number, adapters work, broken artifacts become
failures, and the child process enforces its limits."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from trainarena.engine.scores import score_of
from trainarena.settings import DataRules, Settings
from trainarena.tasks import TaskDefinition, get_task_type
from trainarena.tasks.evaluate_worker import evaluate_request
from trainarena.tasks.instruct import InstructDatasetSpec
from trainarena.tasks.instruct.evaluation import encode_rows
from trainarena.tasks.text.rows import read_jsonl
from trainarena.tasks.text.scoring import load_tokenizer


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """On a shared 2-core machine two OpenMP threads ran these tiny models several times slower than one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def prepared(assets, tmp_path_factory):
    root = tmp_path_factory.mktemp("instruct-eval")
    fields = assets.dataset_fields["units"]
    task = TaskDefinition("units", "instruct", str(assets.tiny_llama), {"source": str(assets.datasets["units"]), **fields}, 10)
    return task, get_task_type("instruct").prepare(task, root / "train", root / "hidden", Settings())


def score_in_process(prepared, artifact_dir, **rules):
    task, prep = prepared
    request = {"task_type": "instruct", "hidden_file": str(prep.hidden_file), "dataset_spec": prep.dataset_spec,
               "artifact_dir": str(artifact_dir), "base_model": task.base_model, "rules": DataRules(**rules).model_dump()}
    return evaluate_request(request)


def test_score_is_the_token_weighted_mean_of_completion_losses(assets, prepared):
    result = score_in_process(prepared, assets.tiny_llama)
    per_example, details = result["per_example"], result["details"]
    assert len(per_example) == details["examples"] == prepared[1].hidden_rows
    tokenizer = load_tokenizer(str(assets.tiny_llama))
    spec = InstructDatasetSpec.from_dict(prepared[1].dataset_spec)
    counts = [sum(1 for x in labels if x != -100) for _, labels in encode_rows(spec, read_jsonl(prepared[1].hidden_file), tokenizer, 512)]
    assert details["tokens"] == sum(counts)
    # Each example's share is its summed loss over the split's tokens; the score is exactly their sum.
    assert result["score"] == score_of(per_example) and details["per_example_form"] == "shares"
    means = [share * sum(counts) / count for share, count in zip(per_example, counts, strict=True)]
    assert result["score"] == pytest.approx(sum(m * c for m, c in zip(means, counts, strict=True)) / sum(counts), rel=1e-12)
    assert result["score"] != pytest.approx(sum(means) / len(means), rel=1e-6)  # not the mean of example means
    # batch size and sort order do not change the number
    assert score_in_process(prepared, assets.tiny_llama, eval_batch_size=1)["score"] == pytest.approx(result["score"], abs=1e-5)


@pytest.mark.slow
def test_score_equals_trainer_evaluate_eval_loss(assets, prepared, tmp_path):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    tokenizer = load_tokenizer(str(assets.tiny_llama))
    spec = InstructDatasetSpec.from_dict(prepared[1].dataset_spec)
    encoded = encode_rows(spec, read_jsonl(prepared[1].hidden_file), tokenizer, 512)
    dataset = Dataset.from_list([{"input_ids": ids, "labels": labels} for ids, labels in encoded])

    def collate(batch):
        width = max(len(b["input_ids"]) for b in batch)
        pad = lambda seq, value: seq + [value] * (width - len(seq))  # noqa: E731
        return {
            "input_ids": torch.tensor([pad(b["input_ids"], tokenizer.pad_token_id) for b in batch]),
            "attention_mask": torch.tensor([pad([1] * len(b["input_ids"]), 0) for b in batch]),
            "labels": torch.tensor([pad(b["labels"], -100) for b in batch]),
        }

    def eval_loss(batch_size: int) -> float:
        args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=batch_size, report_to=[],
                                 use_cpu=True, remove_unused_columns=False)
        model = AutoModelForCausalLM.from_pretrained(assets.tiny_llama, use_safetensors=True)
        return Trainer(model=model, args=args, eval_dataset=dataset, data_collator=collate).evaluate()["eval_loss"]

    result = score_in_process(prepared, assets.tiny_llama)
    # One batch holding every example: Trainer's per-batch mean is then the token-weighted mean.
    assert result["score"] == pytest.approx(eval_loss(len(encoded)), abs=1e-4)
    # Several batches: Trainer averages each batch's token mean, weighted by the batch's examples
    # (docs/rules.md); the shares give that number too, and it is not the score.
    counts = [sum(label != -100 for label in labels) for _, labels in encoded]
    sums = [share * sum(counts) for share in result["per_example"]]
    batches = [range(start, min(start + 4, len(encoded))) for start in range(0, len(encoded), 4)]
    means = [sum(sums[k] for k in b) / sum(counts[k] for k in b) for b in batches]
    by_batches = sum(len(b) * mean for b, mean in zip(batches, means, strict=True)) / len(encoded)
    several = eval_loss(4)
    assert several == pytest.approx(by_batches, abs=1e-4) and several != pytest.approx(result["score"], abs=1e-3)


# peft 0.21 reads a property transformers 5.23 deprecated; not ours to fix.
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_a_peft_adapter_scores_like_its_merged_model(assets, prepared, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(assets.tiny_llama, use_safetensors=True)
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    lora.merge_and_unload().save_pretrained(tmp_path / "merged")
    adapter_score = score_in_process(prepared, tmp_path / "adapter")["score"]
    assert adapter_score != pytest.approx(score_in_process(prepared, assets.tiny_llama)["score"], abs=1e-3)
    assert adapter_score == pytest.approx(score_in_process(prepared, tmp_path / "merged")["score"], abs=1e-4)


def _broken(kind: str, assets, directory):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    if kind == "missing directory":
        return directory / "nothing-here"
    directory.mkdir()
    if kind == "empty directory":
        return directory
    if kind == "adapter with pickled weights only":
        (directory / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
        (directory / "adapter_model.bin").write_bytes(b"pickle")
        return directory
    shutil.copy(assets.tiny_llama / "config.json", directory / "config.json")
    weights = load_file(assets.tiny_llama / "model.safetensors")
    if kind == "garbage safetensors":
        (directory / "model.safetensors").write_bytes(b"\x00" * 64 + b"not a safetensors file")
    elif kind == "wrong shapes":
        save_file({k: (v[:, :-1].contiguous() if v.dim() == 2 else v) for k, v in weights.items()}, directory / "model.safetensors")
    elif kind == "one tensor of another shape":  # the QA's script: only the embeddings, 3 x 3
        save_file({"model.embed_tokens.weight": torch.zeros(3, 3)}, directory / "model.safetensors")
    elif kind == "missing tensors":
        save_file({k: v for k, v in weights.items() if "layers.0." not in k}, directory / "model.safetensors")
    elif kind == "nan weights":
        save_file({k: v if "norm" not in k else torch.full_like(v, math.nan) for k, v in weights.items()}, directory / "model.safetensors")
    return directory


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing directory", "does not exist"),
        ("empty directory", "neither config.json"),
        ("adapter with pickled weights only", "pickled weights are not loaded"),
        ("garbage safetensors", "Error"),
        # Each hidden size one short: the shapes named against the base model's (hidden 192, vocabulary 3000).
        ("wrong shapes", "29 tensors of another shape (model.embed_tokens.weight: artifact [3000, 191], expected "
                         "[3000, 192]; model.layers.0.mlp.down_proj.weight: artifact [192, 511], expected [192, 512]; "
                         "model.layers.0.mlp.gate_proj.weight: artifact [512, 191], expected [512, 192]; and 26 more)"),
        ("one tensor of another shape", "weights do not match the base model's architecture: 1 tensor of another shape "
                                        "(model.embed_tokens.weight: artifact [3, 3], expected [3000, 192]); "
                                        "37 tensors missing (model.layers.0.input_layernorm.weight, "),
        ("missing tensors", "do not match the base model's architecture: 9 tensors missing (model.layers.0."),
        ("nan weights", "not finite"),
    ],
)
def test_broken_artifacts_are_failures_with_a_reason(assets, prepared, tmp_path, kind, reason):
    result = score_in_process(prepared, _broken(kind, assets, tmp_path / "artifact"))
    assert result["score"] is None and reason in result["failure"] and result["failure"]
    if reason.startswith("weights do not match"):  # the platform's own reason, not an exception's name
        assert result["failure"].startswith(reason)


def test_an_artifacts_config_cannot_change_the_architecture_it_is_scored_in(assets, prepared, tmp_path):
    """The base weights under a config.json that changes how attention works (the position encoding
    here; another model type or bidirectional attention would let a position see the token it
    predicts): it is scored in the base model's architecture, so exactly as the base model."""
    artifact = tmp_path / "reconfigured"
    shutil.copytree(assets.tiny_llama, artifact)
    config = json.loads((artifact / "config.json").read_text())
    (artifact / "config.json").write_text(json.dumps({**config, "rope_parameters": {"rope_theta": 1.0, "rope_type": "default"}}))
    assert score_in_process(prepared, artifact)["score"] == score_in_process(prepared, assets.tiny_llama)["score"]


def test_a_weight_index_naming_files_outside_the_artifact_is_refused(assets, prepared, tmp_path):
    """A sharded index whose weight_map names another run's weights by path: loaders would open them."""
    artifact = tmp_path / "borrowed"
    artifact.mkdir()
    shutil.copy(assets.tiny_llama / "config.json", artifact / "config.json")
    (artifact / "dummy.safetensors").write_bytes((assets.tiny_llama / "model.safetensors").read_bytes())
    from safetensors import safe_open

    with safe_open(assets.tiny_llama / "model.safetensors", framework="pt") as weights:
        keys = list(weights.keys())
    elsewhere = str(assets.tiny_llama / "model.safetensors")
    (artifact / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": dict.fromkeys(keys, elsewhere)}))
    result = score_in_process(prepared, artifact)
    assert result["score"] is None and f"maps weights to {elsewhere!r}, which is not a file beside it" in result["failure"]


@pytest.mark.slow
def test_the_child_process_scores_like_in_process(assets, prepared):
    task, prep = prepared
    good = get_task_type("instruct").evaluate(task, prep, assets.tiny_llama, Settings(data=DataRules(eval_cpu_threads=1)))
    assert good.failure is None and good.score == pytest.approx(score_in_process(prepared, assets.tiny_llama)["score"], abs=1e-6)
    assert len(good.per_example) == prep.hidden_rows and good.details["tokens"] > prep.hidden_rows


def test_the_child_process_is_stopped_at_its_time_limit(assets, prepared):
    task, prep = prepared
    settings = Settings(data=DataRules(eval_timeout_seconds=0.5))
    evaluation = get_task_type("instruct").evaluate(task, prep, assets.tiny_llama, settings)
    assert evaluation.score is None and "exceeded its 0.5 s limit" in evaluation.failure


@pytest.mark.slow
def test_the_child_process_cannot_use_more_memory_than_its_cap(assets, prepared):
    task, prep = prepared
    # Below what the child has mapped once torch is imported: every later allocation fails.
    settings = Settings(data=DataRules(eval_memory_limit_mb=64, eval_cpu_threads=1))
    evaluation = get_task_type("instruct").evaluate(task, prep, assets.tiny_llama, settings)
    assert evaluation.score is None and evaluation.failure
    assert any(word in evaluation.failure.lower() for word in ("memory", "allocate", "died")), evaluation.failure


@pytest.mark.slow
def test_fine_tuning_on_the_train_split_lowers_the_score(assets, prepared, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    task, prep = prepared
    tokenizer = load_tokenizer(task.base_model)
    spec = InstructDatasetSpec.from_dict(prep.dataset_spec)
    encoded = encode_rows(spec, read_jsonl(prep.train_file), tokenizer, 512)
    model = AutoModelForCausalLM.from_pretrained(task.base_model, use_safetensors=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    for step in range(15):
        batch = [encoded[(step * 8 + i) % len(encoded)] for i in range(8)]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([i + [tokenizer.pad_token_id] * (width - len(i)) for i, _ in batch])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(tmp_path / "tuned")
    before = score_in_process(prepared, task.base_model)["score"]
    after = score_in_process(prepared, tmp_path / "tuned")["score"]
    assert after < before - 1.0
