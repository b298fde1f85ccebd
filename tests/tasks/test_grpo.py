"""GRPO tasks: reward functions are checked (in the sandbox) at task creation, and evaluation samples with
fixed settings, rewards in the sandbox and subtracts the KL penalty."""

from __future__ import annotations

import json
import shutil

import pytest

from trainarena.contract import Direction, TaskType
from trainarena.settings import DataRules, Settings
from trainarena.tasks import DatasetError, TaskDefinition, get_task_type
from trainarena.tasks.evaluate_worker import evaluate_request
from trainarena.tasks.grpo import sampling_settings
from trainarena.tasks.grpo.rewards import RewardSandbox
from trainarena.tasks.text.rows import read_jsonl

RULES = DataRules(grpo_eval_prompts=12, grpo_eval_max_new_tokens=8)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def grpo_task(assets, **dataset) -> TaskDefinition:
    (data,) = assets.datasets_of("grpo")
    return TaskDefinition("grpo", TaskType.GRPO, str(assets.tiny_llama), data.dataset_spec() | dataset, 10)


@pytest.fixture(scope="module")
def prepared(assets, tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo")
    task = grpo_task(assets)
    return task, get_task_type("grpo").prepare(task, root / "train", root / "hidden", Settings())


def score(prepared, artifact_dir, kl_coef=0.05, rules=RULES):
    task, prep = prepared
    settings = Settings()
    return evaluate_request({
        "task_type": "grpo", "hidden_file": str(prep.hidden_file), "dataset_spec": prep.dataset_spec,
        "artifact_dir": str(artifact_dir), "base_model": task.base_model, "kl_coef": kl_coef,
        "sampling": sampling_settings(rules), "rules": rules.model_dump(),
        "reward_sandbox": RewardSandbox.from_rules(settings.sandbox, RULES).to_dict(),
    })


def test_prepare_writes_the_reward_sources_for_the_script(prepared):
    plugin = get_task_type("grpo")
    assert plugin.task_type is TaskType.GRPO and plugin.direction is Direction.HIGHER
    _, prep = prepared
    spec = prep.dataset_spec
    assert [f["name"] for f in spec["reward_functions"]] == ["correct_answer", "leading_number"]
    assert "def correct_answer" in spec["reward_functions"][0]["source"] and spec["scoring"]["kl_coef"] == 0.05
    assert set(read_jsonl(prep.train_file)[0]) == {"question", "answer"}


def test_a_failing_reward_is_refused_at_task_creation_naming_it(assets, tmp_path):
    broken = [{"source": "def picky(completions, answer, **kw):\n    return [1 / len(c) for c in completions]\n", "weight": 1}]
    task = grpo_task(assets, reward_functions=broken)
    with pytest.raises(DatasetError, match="'picky' failed: ZeroDivisionError"):
        get_task_type("grpo").prepare(task, tmp_path / "train", tmp_path / "hidden", Settings())


def test_the_base_model_scores_its_rewards_with_no_kl(assets, prepared):
    result = score(prepared, assets.tiny_llama)
    details = result["details"]
    assert details["examples"] == 12 and details["kl"] == pytest.approx(0.0, abs=1e-4)
    rewards = details["rewards"]
    assert set(rewards) == {"correct_answer", "leading_number"}
    assert result["score"] == pytest.approx((rewards["correct_answer"] + 0.5 * rewards["leading_number"]) / 1.5, abs=1e-4)
    again = score(prepared, assets.tiny_llama)  # fixed seed: the same samples, the same score
    assert again["score"] == result["score"] and again["details"]["sample_completions"] == details["sample_completions"]


def test_an_artifacts_generation_config_does_not_steer_the_sampling(assets, prepared, tmp_path):
    """The base weights with a generation_config.json that suppresses every token but a few: scored
    under it, completions would be forced at no KL cost (the penalty reads the raw logits)."""
    artifact = tmp_path / "steered"
    shutil.copytree(assets.tiny_llama, artifact)
    vocabulary = json.loads((artifact / "config.json").read_text())["vocab_size"]
    (artifact / "generation_config.json").write_text(json.dumps({"suppress_tokens": list(range(3, vocabulary))}))
    steered, base = score(prepared, artifact), score(prepared, assets.tiny_llama)
    assert steered["details"]["sample_completions"] == base["details"]["sample_completions"]
    assert steered["score"] == base["score"]


def test_each_prompt_scores_the_mean_of_its_samples(assets, prepared):
    one = score(prepared, assets.tiny_llama, rules=RULES.model_copy(update={"grpo_eval_samples": 1}))
    several = score(prepared, assets.tiny_llama, rules=RULES.model_copy(update={"grpo_eval_samples": 6}))
    assert one["details"]["samples_per_example"] == 1 and several["details"]["samples_per_example"] == 6
    # still one value per prompt (the paired boss rule resamples prompts), adding up to the score
    assert len(one["per_example"]) == len(several["per_example"]) == 12
    assert sum(several["per_example"]) == pytest.approx(several["score"], abs=1e-12)
    # one completion's reward is (correct + 0.5 * format) / 1.5, a multiple of 1/6 (the base pays no KL);
    # a prompt's value is the mean of 6 of them, a multiple of 1/36, and here not always of 1/6
    values = [share * 12 for share in several["per_example"]]
    assert all(abs(v * 36 - round(v * 36)) < 1e-2 for v in values)
    assert all(abs(v * 6 - round(v * 6)) < 1e-2 for v in [share * 12 for share in one["per_example"]])
    assert any(abs(v * 6 - round(v * 6)) > 1e-2 for v in values)
    assert len(several["details"]["sample_completions"]) == 3  # one per prompt, not one prompt's samples


def test_a_changed_policy_pays_a_kl_penalty(assets, prepared, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(assets.tiny_llama)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    model.save_pretrained(tmp_path / "policy")
    without = score(prepared, tmp_path / "policy", kl_coef=0.0)
    penalised = score(prepared, tmp_path / "policy", kl_coef=1.0)
    assert without["details"]["kl"] > 0.01
    assert penalised["score"] == pytest.approx(without["score"] - without["details"]["kl"], abs=1e-4)


def test_a_flatter_policy_pays_a_kl_penalty_too(assets, prepared, tmp_path):
    # Log-probs at temperature 1 of completions sampled at 0.7 made a model flatter than the base
    # score a negative "KL": a bonus for unlearning. At the sampling temperature it is a real KL.
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(assets.tiny_llama)
    with torch.no_grad():
        model.model.norm.weight.mul_(0.8)  # every logit scaled by 0.8: the same ranking, a flatter distribution
    model.save_pretrained(tmp_path / "flatter")
    # measured: -2.13 nats at temperature 1, +0.125 at the sampling temperature (0.7)
    assert score(prepared, tmp_path / "flatter", kl_coef=0.0)["details"]["kl"] > 0.05


def test_spec_refuses_all_zero_weights(assets, tmp_path):
    zero = [{"source": "def f(completions, **kw):\n    return [0.0] * len(completions)\n", "weight": 0}]
    with pytest.raises(DatasetError, match="weights sum to 0"):
        get_task_type("grpo").prepare(grpo_task(assets, reward_functions=zero), tmp_path / "t", tmp_path / "h", Settings())


@pytest.mark.sandbox
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="the rewards are tried in bubblewrap")
def test_rows_without_a_prompt_are_dropped_and_recorded(tmp_path):
    rows = [{"q": f"{i} plus 1 is", "a": str(i + 1)} for i in range(30)] + [{"q": " ", "a": "1"}, {"q": None, "a": "2"}]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    rewards = [{"source": "def zero(completions, **kwargs):\n    return [0.0] * len(completions)\n"}]
    dataset = {"source": str(tmp_path / "d.jsonl"), "field_prompt": "q", "field_extra": "a", "reward_functions": rewards}
    prep = get_task_type("grpo").prepare(TaskDefinition("g", TaskType.GRPO, "m", dataset, 5), tmp_path / "t", tmp_path / "h", Settings())
    assert [(group.reason, group.rows) for group in prep.dropped] == [("column 'q' is empty", (31,)), ("column 'q' is null", (32,))]
    assert prep.dataset_spec["dropped_rows"] == 2 and prep.train_rows + prep.hidden_rows == 30
