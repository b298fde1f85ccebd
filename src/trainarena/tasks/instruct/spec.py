"""The instruct dataset spec: where the rows come from, which columns mean what, and how a row becomes a
prompt and a completion. Modelled on Gradients' ``InstructTextDatasetType``.

A task file's ``[dataset]`` table is this spec::

    [dataset]
    source = "data/arithmetic.jsonl"     # local .jsonl/.json/.csv/.parquet, or a Hugging Face dataset id
    field_instruction = "instruction"    # required
    field_output = "output"              # required
    field_input = "input"                # optional; empty values use no_input_format
    field_system = "sys"                 # optional; a row's empty system falls back to system_prompt
    format = "{instruction}\\n{input}"
    no_input_format = "{instruction}"
    system_format = "{system}\\n"
    system_prompt = ""
    response_separator = "\\n### Response:\\n"

The spec written for scripts (``/inputs/dataset_spec.json``) is the same dictionary with ``source``
replaced by the train file's name and a ``scoring`` entry describing exactly what is scored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from trainarena.tasks.spec_checks import check_answer_column, check_format, require_strings, spec_fields

# The placeholders each format string may use.
_PLACEHOLDERS = {
    "format": {"instruction", "input"},
    "no_input_format": {"instruction"},
    "system_format": {"system"},
}

SCORING = {
    "metric": "eval_loss",
    "direction": "lower",
    "prompt": "render_prompt(row): system_format (if a system text) + format or no_input_format + response_separator",
    "completion": "the output column's text; the tokenizer's eos token is appended after tokenizing",
    "tokenization": "prompt with the base tokenizer's special tokens (add_special_tokens=True), completion "
    "without, then eos; prompt tokens are masked; long examples lose prompt tokens from the left first",
    "loss": "sum of cross-entropy over all completion tokens (eos included) / number of completion tokens",
}


@dataclass(frozen=True)
class InstructDatasetSpec:
    source: str
    field_instruction: str
    field_output: str
    field_input: str | None = None
    field_system: str | None = None
    format: str = "{instruction}\n{input}"
    no_input_format: str = "{instruction}"
    system_format: str = "{system}\n"
    system_prompt: str = ""
    response_separator: str = "\n### Response:\n"
    split: str = "train"  # split of a Hugging Face dataset; ignored for local files

    def __post_init__(self) -> None:
        require_strings(self, ("source", "field_instruction", "field_output", "response_separator"))
        check_answer_column(self, "field_output", ("field_instruction", "field_input", "field_system"))
        for name, allowed in _PLACEHOLDERS.items():
            check_format(name, getattr(self, name), allowed)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructDatasetSpec:
        return cls(**spec_fields(cls, data, {"source", "field_instruction", "field_output"}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def columns(self) -> dict[str, str]:
        """Role -> column name, for the columns this spec reads."""
        roles = {"instruction": self.field_instruction, "output": self.field_output}
        if self.field_input:
            roles["input"] = self.field_input
        if self.field_system:
            roles["system"] = self.field_system
        return roles

    def for_script(self, train_file: str) -> dict[str, Any]:
        """The dictionary written as ``/inputs/dataset_spec.json``: no host path, plus the scoring rules."""
        data = self.to_dict() | {"source": train_file, "file": train_file, "task_type": "instruct"}
        return data | {"scoring": dict(SCORING)}
