"""Chat tasks: field names and role maps, assistant-only labels from the chat template, validation, and
evaluation equal to the instruct scorer's arithmetic on the assistant tokens."""

from __future__ import annotations

import json

import pytest

from trainarena.contract import Direction, TaskType
from trainarena.settings import DataRules, Settings
from trainarena.tasks import DatasetError, TaskDefinition, get_task_type
from trainarena.tasks.chat import ChatDatasetSpec, group_key, to_messages, tokenize_conversation
from trainarena.tasks.evaluate_worker import evaluate_request
from trainarena.tasks.text.rows import read_jsonl
from trainarena.tasks.text.scoring import load_tokenizer


@pytest.fixture(scope="module")
def prepared(assets, tmp_path_factory):
    root = tmp_path_factory.mktemp("chat")
    (data,) = assets.datasets_of("chat")
    task = TaskDefinition("chat", TaskType.CHAT, str(assets.tiny_llama), data.dataset_spec(), 10)
    return task, get_task_type("chat").prepare(task, root / "train", root / "hidden", Settings())


def sharegpt(tmp_path, rows) -> dict:
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"source": str(path), "field_messages": "conversations", "field_role": "from", "field_content": "value",
            "role_map": {"human": "user", "gpt": "assistant"}}


def test_only_assistant_turns_are_labelled(assets):
    tokenizer = load_tokenizer(str(assets.tiny_llama))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "add 2 and 3"},
                {"role": "assistant", "content": "5"}, {"role": "user", "content": "add 4 and 4"},
                {"role": "assistant", "content": "8"}]
    ids, labels = tokenize_conversation(tokenizer, messages, 512)
    assert ids[0] == tokenizer.bos_token_id and len(ids) == len(labels)
    scored = tokenizer.decode([t for t in labels if t != -100])
    assert scored == "5<|eos|>\n8<|eos|>\n"
    assert "add" in tokenizer.decode(ids) and "add" not in scored


def test_field_names_and_role_map_are_applied(tmp_path):
    spec = ChatDatasetSpec.from_dict(sharegpt(tmp_path, []))
    row = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    assert to_messages(spec, row, "r") == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"conversations": "hi"}, "not a list of messages"),
        ({"conversations": [{"from": "human"}]}, "message 1 needs 'from' and 'value'"),
        ({"conversations": [{"from": "bot", "value": "x"}]}, "role 'bot'; map it with role_map"),
        ({"talk": []}, "no column 'conversations'"),
        ({"conversations": None}, "column 'conversations' is null, not a list"),
        ({"conversations": [{"from": "human", "value": None}]}, "message 1's 'value' is null, not text"),
        ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a" * 70_000}]},
         "message 2's 'value' is 70,000 bytes, over the limit of 65,536 bytes per field"),
    ],
)
def test_malformed_conversations_name_the_row(tmp_path, row, message):
    good = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    task = TaskDefinition("c", TaskType.CHAT, "m", sharegpt(tmp_path, [good] * 30 + [row]), 5)
    with pytest.raises(DatasetError, match=message) as error:
        get_task_type("chat").prepare(task, tmp_path / "t", tmp_path / "h", Settings())
    assert "row 31" in str(error.value)


def test_conversations_without_an_answer_are_dropped_then_too_few_is_an_error(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "a"}]} for i in range(30)]
    rows += [{"conversations": [{"from": "human", "value": "only a question"}]}] * 3
    prep = get_task_type("chat").prepare(TaskDefinition("c", TaskType.CHAT, "m", sharegpt(tmp_path, rows), 5), tmp_path / "t", tmp_path / "h", Settings())
    assert prep.train_rows + prep.hidden_rows == 30 and prep.dataset_spec["dropped_rows"] == 3
    assert [(group.reason, group.rows) for group in prep.dropped] == [("no assistant message with text", (31, 32, 33))]
    with pytest.raises(DatasetError, match=r"4 of 34 rows \(12%\) are unusable"):
        get_task_type("chat").prepare(TaskDefinition("c", TaskType.CHAT, "m", sharegpt(tmp_path, rows + rows[-1:]), 5), tmp_path / "t1", tmp_path / "h1", Settings())
    with pytest.raises(DatasetError, match="fewer than the minimum"):
        get_task_type("chat").prepare(TaskDefinition("c", TaskType.CHAT, "m", sharegpt(tmp_path, rows[:10]), 5), tmp_path / "t2", tmp_path / "h2", Settings())


@pytest.mark.slow  # the plain one-conversation-at-a-time reference is what makes it slow
def test_score_is_the_token_weighted_loss_on_assistant_tokens(assets, prepared):
    import torch
    from transformers import AutoModelForCausalLM

    task, prep = prepared
    assert get_task_type("chat").direction is Direction.LOWER
    result = evaluate_request({"task_type": "chat", "hidden_file": str(prep.hidden_file), "dataset_spec": prep.dataset_spec,
                               "artifact_dir": str(assets.tiny_llama), "base_model": task.base_model, "rules": DataRules().model_dump()})
    tokenizer = load_tokenizer(task.base_model)
    spec = ChatDatasetSpec.from_dict(prep.dataset_spec)
    model = AutoModelForCausalLM.from_pretrained(task.base_model)
    total, tokens = 0.0, 0
    with torch.no_grad():
        for row in read_jsonl(prep.hidden_file):  # one conversation at a time, no padding: the plain definition
            ids, labels = tokenize_conversation(tokenizer, to_messages(spec, row, "r"), 512)
            count = sum(label != -100 for label in labels)
            total += model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.item() * count
            tokens += count
    assert result["details"]["tokens"] == tokens and result["details"]["examples"] == prep.hidden_rows
    assert result["score"] == pytest.approx(total / tokens, rel=1e-5)


def test_group_key_is_the_opening_user_turns_without_the_system(tmp_path):
    spec = ChatDatasetSpec.from_dict(sharegpt(tmp_path, []))
    first = {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Add 2 and 3"},
                               {"from": "gpt", "value": "5"}, {"from": "human", "value": "and 4?"}, {"from": "gpt", "value": "9"}]}
    second = {"conversations": [{"from": "human", "value": "add 2  and 3"}, {"from": "gpt", "value": "five"}]}
    assert group_key(spec, first) == group_key(spec, second) == "add 2 and 3"
