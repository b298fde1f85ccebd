"""DPO tasks: the spec and data rules, the evaluation's number (by hand and against TRL's DPOTrainer),
and that a policy trained towards the chosen answers scores better than the base model."""

from __future__ import annotations

import json
import logging
import math

import pytest

from trainarena.contract import Direction, TaskType
from trainarena.engine.scores import score_of
from trainarena.settings import DataRules, Settings
from trainarena.tasks import DatasetError, TaskDefinition, get_task_type
from trainarena.tasks.dpo import DpoDatasetSpec
from trainarena.tasks.dpo.evaluation import dpo_losses, encode_pair
from trainarena.tasks.evaluate_worker import evaluate_request
from trainarena.tasks.text.rows import read_jsonl
from trainarena.tasks.text.scoring import load_tokenizer

PARITY_TOLERANCE = 1e-4  # absolute, on the mean DPO loss (~0.69 for the base model against itself)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def dpo_task(assets, name="preference_arithmetic") -> TaskDefinition:
    (dataset,) = [d for d in assets.datasets_of("dpo") if d.name == name]
    return TaskDefinition(name, TaskType.DPO, str(assets.tiny_llama), dataset.dataset_spec(), 10)


@pytest.fixture(scope="module")
def prepared(assets, tmp_path_factory):
    root = tmp_path_factory.mktemp("dpo")
    task = dpo_task(assets)
    return task, get_task_type("dpo").prepare(task, root / "train", root / "hidden", Settings())


def score(prepared, artifact_dir, beta=0.1, **rules):
    task, prep = prepared
    return evaluate_request({
        "task_type": "dpo", "hidden_file": str(prep.hidden_file), "dataset_spec": prep.dataset_spec,
        "artifact_dir": str(artifact_dir), "base_model": task.base_model, "beta": beta,
        "rules": DataRules(**rules).model_dump(),
    })


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_plugin_is_registered_lower_is_better_and_splits_without_leaks(prepared):
    plugin = get_task_type("dpo")
    assert plugin.task_type is TaskType.DPO and plugin.direction is Direction.LOWER
    _, prep = prepared
    train, hidden = read_jsonl(prep.train_file), read_jsonl(prep.hidden_file)
    assert prep.hidden_rows == len(hidden) == 80 and prep.train_rows == len(train) == 720
    assert not {json.dumps(r, sort_keys=True) for r in train} & {json.dumps(r, sort_keys=True) for r in hidden}
    assert prep.dataset_spec["source"] == "train.jsonl" and prep.dataset_spec["scoring"]["beta"] == 0.1


def test_rows_with_an_empty_field_are_dropped_and_recorded_with_their_numbers(tmp_path, caplog):
    rows = [{"p": f"q{i}", "c": "good", "r": "bad"} for i in range(25)]
    rows += [{"p": "x", "c": "", "r": "bad"}, {"p": " ", "c": "a", "r": "b"}, {"p": "y", "c": None, "r": "b"}, {"p": "z", "r": "b"}]
    task = TaskDefinition("t", TaskType.DPO, "m", {"source": write_rows(tmp_path / "d.jsonl", rows), "field_prompt": "p", "field_chosen": "c", "field_rejected": "r"}, 5)
    with caplog.at_level(logging.INFO):
        prep = get_task_type("dpo").prepare(task, tmp_path / "train", tmp_path / "hidden", Settings(data=DataRules(max_dropped_fraction=0.2)))
    assert prep.train_rows + prep.hidden_rows == 25 and prep.dataset_spec["dropped_rows"] == 4 == prep.dropped_count
    assert [(group.reason, group.rows) for group in prep.dropped] == [
        ("column 'c' is empty", (26,)), ("column 'p' is empty", (27,)), ("column 'c' is null", (28,)), ("column 'c' is missing", (29,)),
    ]
    assert "dropped 4 rows:" in caplog.text and "column 'c' is null (row 28)" in caplog.text


def test_too_many_empty_rows_refuse_the_dataset(tmp_path):
    rows = [{"p": f"q{i}", "c": "good", "r": "bad"} for i in range(40)] + [{"p": f"e{i}", "c": " ", "r": "bad"} for i in range(5)]
    dataset = {"source": write_rows(tmp_path / "d.jsonl", rows), "field_prompt": "p", "field_chosen": "c", "field_rejected": "r"}
    task = TaskDefinition("t", TaskType.DPO, "m", dataset, 5)
    with pytest.raises(DatasetError, match=r"5 of 45 rows \(11%\) are unusable, more than the 10% allowed \(data.max_dropped_fraction\): "
                       r"column 'c' is empty \(rows 41, 42, 43, 44, 45\)"):
        get_task_type("dpo").prepare(task, tmp_path / "train", tmp_path / "hidden", Settings())
    prep = get_task_type("dpo").prepare(task, tmp_path / "t2", tmp_path / "h2", Settings(data=DataRules(max_dropped_fraction=0.2)))
    assert prep.dropped_count == 5


def test_rows_whose_chosen_and_rejected_texts_are_equal_are_dropped(tmp_path):
    """Such a row scores ln 2 for every model: a task made of them ranked nobody and every entrant tied."""
    rows = [{"p": f"q{i}", "c": "good", "r": "bad"} for i in range(25)] + [{"p": "x", "c": "same", "r": "same"}]
    dataset = {"source": write_rows(tmp_path / "d.jsonl", rows), "field_prompt": "p", "field_chosen": "c", "field_rejected": "r"}
    task = TaskDefinition("t", TaskType.DPO, "m", dataset, 5)
    prep = get_task_type("dpo").prepare(task, tmp_path / "train", tmp_path / "hidden", Settings())
    assert [(group.reason, group.rows) for group in prep.dropped] == [("chosen and rejected are the same text", (26,))]
    # Equal raw texts that their formats tell apart are kept: the completions scored differ.
    formatted = TaskDefinition("t", TaskType.DPO, "m", {**dataset, "rejected_format": "no: {rejected}"}, 5)
    assert get_task_type("dpo").prepare(formatted, tmp_path / "t2", tmp_path / "h2", Settings()).dropped == ()
    only_same = [{"p": f"{i}+1=", "c": "a", "r": "a"} for i in range(60)]
    same_task = TaskDefinition("t", TaskType.DPO, "m", {**dataset, "source": write_rows(tmp_path / "same.jsonl", only_same)}, 5)
    with pytest.raises(DatasetError, match=r"60 of 60 rows \(100%\) are unusable.*chosen and rejected are the same text"):
        get_task_type("dpo").prepare(same_task, tmp_path / "t3", tmp_path / "h3", Settings())
    with pytest.raises(DatasetError, match="'field_chosen' and 'field_rejected' both name the column 'c'"):
        DpoDatasetSpec.from_dict({**dataset, "field_rejected": "c"})
    with pytest.raises(DatasetError, match="'field_rejected' and 'field_prompt' both name the column 'p'"):
        DpoDatasetSpec.from_dict({**dataset, "field_rejected": "p"})


def test_a_long_chosen_answer_names_its_row(tmp_path):
    rows = [{"p": f"q{i}", "c": "good", "r": "bad"} for i in range(30)]
    rows[17]["c"] = "y" * 65_537
    task = TaskDefinition("t", TaskType.DPO, "m", {"source": write_rows(tmp_path / "d.jsonl", rows), "field_prompt": "p", "field_chosen": "c", "field_rejected": "r"}, 5)
    with pytest.raises(DatasetError, match=r"row 18, column 'c' is 65,537 bytes, over the limit of 65,536 bytes per field"):
        get_task_type("dpo").prepare(task, tmp_path / "train", tmp_path / "hidden", Settings())


@pytest.mark.parametrize(
    ("rows", "fields", "message"),
    [
        ([{"p": "a", "c": "b", "r": "c"}] * 3, {}, "fewer than the minimum"),
        ([{"p": "a", "c": "b"}], {}, "missing column 'r'"),
        ([{"p": "a", "c": ["b"], "r": "c"}], {}, "row 1, column 'c' is a list"),
        ([{"p": "a", "c": "b", "r": "c"}], {"prompt_format": "{question}"}, "allowed placeholders"),
        ([{"p": "a", "c": "b", "r": "c"}], {"prompt_format": "{prompt} {prompt}"}, r"uses \['prompt'\] more than once"),
    ],
)
def test_bad_datasets_name_the_problem(tmp_path, rows, fields, message):
    dataset = {"source": write_rows(tmp_path / "d.jsonl", rows), "field_prompt": "p", "field_chosen": "c", "field_rejected": "r", **fields}
    task = TaskDefinition("t", TaskType.DPO, "m", dataset, 5)
    with pytest.raises(DatasetError, match=message):
        get_task_type("dpo").prepare(task, tmp_path / "train", tmp_path / "hidden", Settings())


def test_spec_rejects_unknown_keys():
    with pytest.raises(DatasetError, match="unknown key"):
        DpoDatasetSpec.from_dict({"source": "x", "field_prompt": "p", "field_chosen": "c", "field_rejected": "r", "chosen": "y"})


def test_the_base_model_against_itself_scores_log_2_with_no_margin(assets, prepared):
    result = score(prepared, assets.tiny_llama)
    assert result["score"] == pytest.approx(math.log(2), abs=1e-5)
    rows = len(result["per_example"])  # each row's share: its loss / rows
    assert all(x * rows == pytest.approx(math.log(2), abs=1e-5) for x in result["per_example"])
    assert result["details"]["reward_margin"] == pytest.approx(0.0, abs=1e-4)


def test_loss_formula_matches_a_hand_computation():
    out = dpo_losses([-1.0, -5.0], [-3.0, -2.0], [-2.0, -2.0], [-2.0, -2.0], beta=0.5)
    expected = [-math.log(1 / (1 + math.exp(-0.5 * 2.0))), -math.log(1 / (1 + math.exp(0.5 * 3.0)))]
    assert out["per_example"] == pytest.approx([e / 2 for e in expected]) and out["score"] == pytest.approx(sum(expected) / 2)
    assert out["score"] == score_of(out["per_example"])
    assert out["details"]["reward_accuracy"] == 0.5


def test_completion_tokens_end_with_eos_and_follow_the_prompt(assets):
    tokenizer = load_tokenizer(str(assets.tiny_llama))
    prompt_ids, chosen, rejected = encode_pair(tokenizer, "add 2 and 3\n### Response:\n", "5", "6", 512)
    assert prompt_ids[0] == tokenizer.bos_token_id
    assert chosen[-1] == rejected[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(chosen, skip_special_tokens=True).endswith("5")


def test_a_policy_nudged_towards_the_chosen_answers_scores_lower(assets, prepared, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    task, prep = prepared
    tokenizer = load_tokenizer(task.base_model)
    model = AutoModelForCausalLM.from_pretrained(task.base_model)
    spec = DpoDatasetSpec.from_dict(prep.dataset_spec)
    from trainarena.tasks.dpo.spec import render_triple

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rows = read_jsonl(prep.train_file)[:64]
    for start in range(0, 64, 16):  # a few SFT steps on the chosen answers
        texts = [p + c + tokenizer.eos_token for p, c, _ in (render_triple(spec, r) for r in rows[start : start + 16])]
        batch = tokenizer(texts, return_tensors="pt", padding=True)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(tmp_path / "policy")
    result = score(prepared, tmp_path / "policy")
    assert result["score"] < math.log(2) and result["details"]["reward_accuracy"] > 0.5


@pytest.mark.slow
# TRL 1.16's own reference forward reads transformers' deprecated alias (trl/models/utils.py).
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_score_matches_trl_dpo_trainer_evaluate(assets, prepared, tmp_path):
    """TRL 1.16 DPOTrainer.evaluate() on the same policy, reference, rows and beta: one eval batch holding
    every row, so its per-batch mean is our mean."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    task, prep = prepared
    spec = DpoDatasetSpec.from_dict(prep.dataset_spec)
    from trainarena.tasks.dpo.spec import render_triple

    rows = read_jsonl(prep.hidden_file)
    dataset = Dataset.from_list([dict(zip(("prompt", "chosen", "rejected"), render_triple(spec, r), strict=True)) for r in rows])
    policy = AutoModelForCausalLM.from_pretrained(task.base_model)
    torch.manual_seed(0)
    with torch.no_grad():  # a policy that differs from the reference, so the loss is not just log 2
        for parameter in policy.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02, alpha=1.0)
    policy.save_pretrained(tmp_path / "policy")
    tokenizer = load_tokenizer(task.base_model)
    args = DPOConfig(
        output_dir=str(tmp_path / "trl"), beta=0.1, per_device_eval_batch_size=len(rows), report_to="none",
        use_cpu=True, max_length=512, disable_tqdm=True, dataloader_num_workers=0, activation_checkpointing=False,
    )
    trainer = DPOTrainer(
        model=policy, ref_model=AutoModelForCausalLM.from_pretrained(task.base_model), args=args,
        train_dataset=dataset, eval_dataset=dataset, processing_class=tokenizer,
    )
    trl_metrics = trainer.evaluate()
    ours = score(prepared, tmp_path / "policy", eval_batch_size=16)
    assert ours["score"] == pytest.approx(trl_metrics["eval_loss"], abs=PARITY_TOLERANCE)
    # The two agree on something other than the untrained value, by far more than the tolerance.
    assert abs(ours["score"] - math.log(2)) > 5 * PARITY_TOLERANCE
    # Accuracy counts margins > 0: a pair whose margin is ~1e-6 can flip between batchings (TRL scores
    # all rows in one padded batch, we use 16), so allow one pair either way.
    assert ours["details"]["reward_accuracy"] == pytest.approx(trl_metrics["eval_rewards/accuracies"], abs=1.01 / len(rows))
