"""A conversation -> ``(input_ids, labels)`` with the base tokenizer's chat template, labels on assistant
turns only. The one function used by the evaluator and described to scripts (``SCORING`` in spec.py)."""

from __future__ import annotations

from trainarena.tasks.base import DatasetError


def assistant_spans(tokenizer, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns.

    Each span runs from the end of ``template(messages[:k], add_generation_prompt=True)`` to the end of
    ``template(messages[:k+1])``: the assistant's text plus whatever end-of-turn marker the template adds."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:k], tokenize=False, add_generation_prompt=True) if k else ""
        through = tokenizer.apply_chat_template(messages[: k + 1], tokenize=False)
        if not (text.startswith(through) and through.startswith(before)):
            raise DatasetError("the chat template does not render conversations prefix by prefix; cannot find assistant turns")
        spans.append((len(before), len(through)))
    return text, spans


def tokenize_conversation(tokenizer, messages: list[dict[str, str]], max_length: int) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)``: labels are -100 except on tokens wholly inside an assistant turn; long
    conversations are cut to ``max_length`` tokens from the start."""
    text, spans = assistant_spans(tokenizer, messages)
    special = not (tokenizer.bos_token and text.startswith(tokenizer.bos_token))
    encoded = tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
    ids, labels = [], []
    for token, (start, end) in zip(encoded["input_ids"][:max_length], encoded["offset_mapping"][:max_length], strict=False):
        inside = end > start and any(a <= start and end <= b for a, b in spans)
        ids.append(token)
        labels.append(token if inside else -100)
    return ids, labels
