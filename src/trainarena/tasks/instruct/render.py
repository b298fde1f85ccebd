"""How one row becomes what is scored: the one pure function pair used by evaluation and described to
scripts in ``dataset_spec.json`` (so a script can train on exactly what is measured).

>>> spec = InstructDatasetSpec(source="x", field_instruction="q", field_output="a", field_input="i")
>>> render_example(spec, {"q": "add 2 and 3", "i": "", "a": "5"})
('add 2 and 3\\n### Response:\\n', '5')
"""

from __future__ import annotations

from collections.abc import Mapping

from trainarena.tasks.instruct.spec import InstructDatasetSpec


def render_prompt(spec: InstructDatasetSpec, row: Mapping[str, object]) -> str:
    """System text (if any) + the formatted instruction (and input when non-empty) + the separator."""
    instruction = str(row[spec.field_instruction])
    user_input = _text(row, spec.field_input)
    if user_input.strip():
        user = spec.format.format(instruction=instruction, input=user_input)
    else:
        user = spec.no_input_format.format(instruction=instruction)
    system = _text(row, spec.field_system) or spec.system_prompt
    prefix = spec.system_format.format(system=system) if system else ""
    return prefix + user + spec.response_separator


def render_example(spec: InstructDatasetSpec, row: Mapping[str, object]) -> tuple[str, str]:
    """``(prompt, completion)``; the tokenizer's eos is appended to the completion by
    :func:`tokenize_example`, not here."""
    return render_prompt(spec, row), str(row[spec.field_output])


def tokenize_example(tokenizer, prompt: str, completion: str, max_length: int) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` with prompt labels -100. Prompt: with the tokenizer's special tokens (BOS
    for LLaMA-style tokenizers); completion: without, plus EOS. Too long: prompt tokens go from the left
    first, then completion tokens from the right, keeping at least one of each."""
    prompt_ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    completion_ids = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is not None:
        completion_ids.append(tokenizer.eos_token_id)
    overflow = len(prompt_ids) + len(completion_ids) - max_length
    if overflow > 0:
        drop_prompt = min(overflow, len(prompt_ids) - 1)
        prompt_ids = prompt_ids[drop_prompt:]
        completion_ids = completion_ids[: max_length - len(prompt_ids)]
    return prompt_ids + completion_ids, [-100] * len(prompt_ids) + completion_ids


def _text(row: Mapping[str, object], column: str | None) -> str:
    if not column:
        return ""
    value = row.get(column)
    return "" if value is None else str(value)
