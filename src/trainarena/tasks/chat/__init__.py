"""Multi-turn chat: conversations of system/user/assistant messages (field names configurable), rendered
with the base tokenizer's chat template; scored by eval loss on the assistant turns of the hidden split
(lower is better)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from trainarena.contract import Direction, TaskType
from trainarena.settings import DataRules, Settings
from trainarena.tasks.base import DatasetError, DroppedRows, Evaluation, PreparedTask, TaskDefinition, count_dropped
from trainarena.tasks.chat.render import tokenize_conversation
from trainarena.tasks.chat.spec import ChatDatasetSpec, group_key, to_messages
from trainarena.tasks.split import split_rows
from trainarena.tasks.text.rows import TRAIN_FILE, accept_dropped, check_text_size, load_rows, write_split, written_keys

__all__ = ["ChatDatasetSpec", "ChatTask", "group_key", "plugin", "to_messages", "tokenize_conversation"]

NO_ANSWER = "no assistant message with text"


class ChatTask:
    task_type = TaskType.CHAT
    direction = Direction.LOWER

    def prepare(self, task: TaskDefinition, train_dir: Path, hidden_dir: Path, settings: Settings) -> PreparedTask:
        spec = ChatDatasetSpec.from_dict(task.dataset)
        rows, dropped = conversations(spec, load_rows(spec, settings.data), settings.data)
        train, hidden = split_rows(rows, settings.data, partial(group_key, spec), spec.source)
        script_spec = spec.for_script(TRAIN_FILE, count_dropped(dropped))
        return write_split(train, hidden, script_spec, train_dir, hidden_dir, dropped)

    def group_keys(self, prepared: PreparedTask) -> tuple[list[str], list[str]]:
        return written_keys(prepared, partial(group_key, ChatDatasetSpec.from_dict(prepared.dataset_spec)))

    def evaluate(self, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings) -> Evaluation:
        from trainarena.tasks.child_evaluation import evaluate_artifact

        return evaluate_artifact(self, task, prepared, artifact_dir, settings)


def conversations(spec: ChatDatasetSpec, raw: list[dict[str, Any]], rules: DataRules) -> tuple[list[dict[str, Any]], tuple[DroppedRows, ...]]:
    """Rows reduced to the messages column; malformed rows raise, rows without an assistant message
    with text are dropped (within ``rules.max_dropped_fraction``); fewer than ``min_rows`` left raises."""
    rows, dropped = [], []
    for number, row in enumerate(raw, start=1):
        if spec.field_messages not in row:
            present = sorted(row)
            raise DatasetError(f"{spec.source}: row {number} has no column '{spec.field_messages}' (field_messages); columns: {present}")
        where = f"{spec.source}: row {number}"
        messages = to_messages(spec, row, where)
        for index, message in enumerate(messages, start=1):
            check_text_size(f"{where}, message {index}'s '{spec.field_content}'", message["content"], rules)
        if any(m["role"] == "assistant" and m["content"].strip() for m in messages):
            rows.append({spec.field_messages: row[spec.field_messages]})
        else:
            dropped.append((number, NO_ANSWER))
    return rows, accept_dropped(spec.source, dropped, len(raw), rules)


def plugin() -> ChatTask:
    return ChatTask()
