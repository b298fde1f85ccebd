"""Multi-turn chat: conversations of system/user/assistant messages (field names configurable), rendered
with the base tokenizer's chat template; scored by eval loss on the assistant turns of the hidden split
(lower is better)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from trainarena.contract import Direction, TaskType
from trainarena.settings import Settings
from trainarena.tasks.base import DatasetError, Evaluation, PreparedTask, TaskDefinition
from trainarena.tasks.chat.render import tokenize_conversation
from trainarena.tasks.chat.spec import ChatDatasetSpec, to_messages
from trainarena.tasks.text.rows import TRAIN_FILE, load_rows, split_rows, write_split

log = logging.getLogger(__name__)

__all__ = ["ChatDatasetSpec", "ChatTask", "plugin", "to_messages", "tokenize_conversation"]


class ChatTask:
    task_type = TaskType.CHAT
    direction = Direction.LOWER

    def prepare(self, task: TaskDefinition, train_dir: Path, hidden_dir: Path, settings: Settings) -> PreparedTask:
        spec = ChatDatasetSpec.from_dict(task.dataset)
        rows, dropped = conversations(spec, load_rows(spec), settings.data.min_rows)
        train, hidden = split_rows(rows, settings.data)
        script_spec = spec.for_script(TRAIN_FILE, dropped)
        return write_split(train, hidden, script_spec, train_dir, hidden_dir)

    def evaluate(self, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings) -> Evaluation:
        from trainarena.tasks.child_evaluation import evaluate_artifact

        return evaluate_artifact(self, task, prepared, artifact_dir, settings)


def conversations(spec: ChatDatasetSpec, raw: list[dict[str, Any]], min_rows: int) -> tuple[list[dict[str, Any]], int]:
    """Rows reduced to the messages column; malformed rows raise, rows without an assistant message
    with text are dropped (counted, logged); fewer than ``min_rows`` left raises."""
    rows, dropped = [], 0
    for number, row in enumerate(raw, start=1):
        if spec.field_messages not in row:
            present = sorted(row)
            raise DatasetError(f"{spec.source}: row {number} has no column '{spec.field_messages}' (field_messages); columns: {present}")
        messages = to_messages(spec, row, f"{spec.source}: row {number}")
        if any(m["role"] == "assistant" and m["content"].strip() for m in messages):
            rows.append({spec.field_messages: row[spec.field_messages]})
        else:
            dropped += 1
    if dropped:
        log.warning("%s: dropped %d conversation(s) without an assistant answer", spec.source, dropped)
    if len(rows) < min_rows:
        raise DatasetError(f"{spec.source}: {len(rows)} usable conversations ({dropped} dropped), fewer than the minimum of {min_rows}")
    return rows, dropped


def plugin() -> ChatTask:
    return ChatTask()
