"""The DPO dataset spec: a prompt (optional system) and a chosen and a rejected completion per row, with
format strings. Modelled on Gradients' ``DpoDatasetType``.

A task file's ``[dataset]`` table::

    [dataset]
    source = "data/preferences.jsonl"   # local .jsonl/.json/.csv/.parquet, or a Hugging Face dataset id
    field_prompt = "prompt"             # required
    field_chosen = "chosen"             # required
    field_rejected = "rejected"         # required
    field_system = "system"             # optional
    prompt_format = "{prompt}"
    chosen_format = "{chosen}"
    rejected_format = "{rejected}"
    system_format = "{system}\\n"
    system_prompt = ""
    response_separator = "\\n### Response:\\n"

Rendered prompt = system_format (if a system text) + prompt_format + response_separator; the chosen and
rejected completions are their formats. Rows with a missing, null or empty prompt, chosen or rejected,
and rows whose chosen and rejected completions are the same text (every model scores ln 2 on them),
are dropped and recorded on the prepared task (more than ``DataRules.max_dropped_fraction`` of the rows,
or fewer than ``DataRules.min_rows`` remaining, is an error); the split keeps each prompt on one side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from trainarena.tasks.base import DatasetError
from trainarena.tasks.spec_checks import SCRIPT_KEYS, check_answer_column, check_format, require_strings, spec_fields

_PLACEHOLDERS = {
    "prompt_format": {"prompt"},
    "chosen_format": {"chosen"},
    "rejected_format": {"rejected"},
    "system_format": {"system"},
}

SCORING = {
    "metric": "dpo_eval_loss",
    "direction": "lower",
    "loss": "mean over hidden rows of -logsigmoid(beta * ((logp(chosen) - ref_logp(chosen)) - "
    "(logp(rejected) - ref_logp(rejected)))), the sigmoid DPO loss of TRL's DPOTrainer",
    "reference": "the base model (/inputs/model) is the reference policy",
    "logp": "sum of the log-probabilities of the completion tokens given the prompt",
    "tokenization": "as TRL's DPOTrainer: ids(prompt) and ids(prompt + completion + eos_token), both with the "
    "base tokenizer's special tokens; the completion is what follows their common prefix",
    "beta": None,  # filled from the settings when the spec is written for a script
}


@dataclass(frozen=True)
class DpoDatasetSpec:
    source: str
    field_prompt: str
    field_chosen: str
    field_rejected: str
    field_system: str | None = None
    prompt_format: str = "{prompt}"
    chosen_format: str = "{chosen}"
    rejected_format: str = "{rejected}"
    system_format: str = "{system}\n"
    system_prompt: str = ""
    response_separator: str = "\n### Response:\n"
    split: str = "train"

    def __post_init__(self) -> None:
        require_strings(self, ("source", "field_prompt", "field_chosen", "field_rejected"))
        if self.field_chosen == self.field_rejected:  # every row would be dropped as chosen == rejected
            raise DatasetError(f"dataset spec: 'field_chosen' and 'field_rejected' both name the column {self.field_chosen!r}; "
                               "the rejected completion must be another column than the chosen one")  # fmt: skip
        for answer in ("field_chosen", "field_rejected"):
            check_answer_column(self, answer, ("field_prompt", "field_system"))
        for name, allowed in _PLACEHOLDERS.items():
            check_format(name, getattr(self, name), allowed)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DpoDatasetSpec:
        required = {"source", "field_prompt", "field_chosen", "field_rejected"}
        return cls(**spec_fields(cls, data, required, SCRIPT_KEYS | {"dropped_rows"}))

    def columns(self) -> dict[str, str]:
        roles = {"prompt": self.field_prompt, "chosen": self.field_chosen, "rejected": self.field_rejected}
        if self.field_system:
            roles["system"] = self.field_system
        return roles

    def for_script(self, train_file: str, beta: float, dropped_rows: int) -> dict[str, Any]:
        data = asdict(self) | {"source": train_file, "file": train_file, "task_type": "dpo"}
        return data | {"scoring": SCORING | {"beta": beta}, "dropped_rows": dropped_rows}


def render_triple(spec: DpoDatasetSpec, row: Mapping[str, object]) -> tuple[str, str, str]:
    """``(prompt, chosen, rejected)`` texts of a row, as the evaluator scores them.

    >>> spec = DpoDatasetSpec(source="x", field_prompt="p", field_chosen="c", field_rejected="r")
    >>> render_triple(spec, {"p": "add 2 and 3", "c": "5", "r": "6"})
    ('add 2 and 3\\n### Response:\\n', '5', '6')
    """
    system = (str(row.get(spec.field_system) or "") if spec.field_system else "") or spec.system_prompt
    prefix = spec.system_format.format(system=system) if system else ""
    prompt = prefix + spec.prompt_format.format(prompt=str(row[spec.field_prompt])) + spec.response_separator
    return (
        prompt,
        spec.chosen_format.format(chosen=str(row[spec.field_chosen])),
        spec.rejected_format.format(rejected=str(row[spec.field_rejected])),
    )
