"""The chat dataset spec: one conversation per row, a list of messages whose role and content sit under
configurable field names (ShareGPT's ``from``/``value``, OpenAI's ``role``/``content``), with a map from
the dataset's role names to ``system`` / ``user`` / ``assistant``.

A task file's ``[dataset]`` table::

    [dataset]
    source = "data/conversations.jsonl"
    field_messages = "conversations"    # the column holding the list of messages
    field_role = "from"
    field_content = "value"
    role_map = { human = "user", gpt = "assistant", system = "system" }

Conversations are rendered with the base tokenizer's chat template; the loss counts assistant turns only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from trainarena.tasks.base import DatasetError
from trainarena.tasks.spec_checks import SCRIPT_KEYS, require_strings, spec_fields
from trainarena.tasks.split import joined_key

ROLES = ("system", "user", "assistant")

SCORING = {
    "metric": "eval_loss",
    "direction": "lower",
    "rendering": "messages mapped through role_map to {role, content}, rendered by the base tokenizer's chat "
    "template (tokenizer.apply_chat_template(messages, tokenize=False)), tokenized with special tokens "
    "unless the rendered text already starts with the bos token",
    "labels": "only tokens lying wholly inside an assistant turn are scored: the text between "
    "template(messages[:k], add_generation_prompt=True) and template(messages[:k+1]) for each assistant message k",
    "loss": "sum of cross-entropy over all assistant tokens / number of assistant tokens; long conversations "
    "keep their start",
}


@dataclass(frozen=True)
class ChatDatasetSpec:
    source: str
    field_messages: str = "messages"
    field_role: str = "role"
    field_content: str = "content"
    role_map: dict[str, str] = field(default_factory=dict)
    split: str = "train"

    def __post_init__(self) -> None:
        require_strings(self, ("source", "field_messages", "field_role", "field_content"))
        if not isinstance(self.role_map, dict) or any(v not in ROLES for v in self.role_map.values()):
            raise DatasetError(f"dataset spec: 'role_map' must map role names to one of {list(ROLES)}, got {self.role_map!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatDatasetSpec:
        return cls(**spec_fields(cls, data, {"source"}, SCRIPT_KEYS | {"dropped_rows"}))

    def role(self, name: object) -> str | None:
        """The template role of a dataset role name; None when it maps to none."""
        mapped = self.role_map.get(str(name), str(name))
        return mapped if mapped in ROLES else None

    def for_script(self, train_file: str, dropped_rows: int) -> dict[str, Any]:
        data = asdict(self) | {"source": train_file, "file": train_file, "task_type": "chat"}
        return data | {"scoring": dict(SCORING), "dropped_rows": dropped_rows}


def to_messages(spec: ChatDatasetSpec, row: dict[str, Any], where: str) -> list[dict[str, str]]:
    """A row's conversation as ``[{"role", "content"}]`` (DatasetError naming ``where`` when malformed)."""
    raw = row.get(spec.field_messages)
    if not isinstance(raw, list):
        shown = "null" if raw is None else f"a {type(raw).__name__}"
        raise DatasetError(f"{where}: column '{spec.field_messages}' is {shown}, not a list of messages")
    messages = []
    for index, message in enumerate(raw, start=1):
        if not isinstance(message, dict) or spec.field_role not in message or spec.field_content not in message:
            raise DatasetError(f"{where}: message {index} needs '{spec.field_role}' and '{spec.field_content}' fields")
        role, content = spec.role(message[spec.field_role]), message[spec.field_content]
        if role is None:
            raise DatasetError(f"{where}: message {index} has role {message[spec.field_role]!r}; map it with role_map to one of {list(ROLES)}")
        if not isinstance(content, str):
            shown = "null" if content is None else f"a {type(content).__name__}"
            raise DatasetError(f"{where}: message {index}'s '{spec.field_content}' is {shown}, not text")
        messages.append({"role": role, "content": content})
    return messages


def group_key(spec: ChatDatasetSpec, row: dict[str, Any]) -> str:
    """The split's group: the conversation's opening, i.e. its user messages before the first assistant
    message, normalised (system messages left out, so one question under two system prompts stays on
    one side). Later turns answer in the context of earlier ones and do not define the group.

    >>> spec = ChatDatasetSpec(source="x")
    >>> group_key(spec, {"messages": [{"role": "user", "content": "Add 2 and 3"}, {"role": "assistant", "content": "5"}]})
    'add 2 and 3'
    """
    opening = []
    for message in to_messages(spec, row, "conversation"):
        if message["role"] == "assistant":
            break
        if message["role"] == "user":
            opening.append(message["content"])
    return joined_key(opening)
