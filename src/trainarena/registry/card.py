"""The model card of a registered model: ``README.md`` with YAML front matter, as the Hugging Face Hub
reads it (``base_model``, ``library_name``, ``tags``, ``license``), and a body that says where the model
comes from (the task type, the dataset's digest, the script's ``repo@commit``) and what its score means
(the metric, its direction, the rows it was measured on). Pure: facts in, text out.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import yaml

from trainarena.contract import Direction
from trainarena.engine.comparison import lead
from trainarena.reporting.server_paths import shown_file, shown_source
from trainarena.wording import HOUSE_SCRIPT, percent

# A Hub model id: ``name`` or ``owner/name`` of letters, digits, '-', '_', '.'. A local path or a
# ``trainarena:NAME`` asset is not one, and the Hub refuses a card whose base_model names no model.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


class Library:
    PEFT = "peft"
    TRANSFORMERS = "transformers"
    DIFFUSERS = "diffusers"


@dataclass(frozen=True)
class ScriptSource:
    """The training script that made the model: a registered competitor's repository at a commit."""

    competitor: str
    repo_url: str
    commit: str


@dataclass(frozen=True)
class Measurement:
    """How the score was measured: on a tournament's hidden split (``hidden_rows``) or on the share of a
    customer's file held out from training (``validation_share``); for a job's model, with the untrained
    base model's score on the same rows by the same evaluator (``base_score``), or why it has none
    (``base_missing``)."""

    metric: str  # e.g. eval_loss, or the image scoring method
    direction: str  # lower | higher: which way is better
    hidden_rows: int | None = None
    validation_share: float | None = None
    base_score: float | None = None
    base_missing: str | None = None

    def describe(self) -> str:
        """``eval_loss (lower is better) on 40 hidden rows the script never saw``."""
        where = []
        if self.validation_share:
            where.append(f"a validation share of {percent(self.validation_share)} held out from the training data")
        if self.hidden_rows is not None:
            where.append(f"{self.hidden_rows} hidden rows the script never saw")
        return f"{self.metric} ({self.direction} is better)" + (f" on {', '.join(where)}" if where else "")


@dataclass(frozen=True)
class CardFacts:
    """Everything a model card says (also kept on the model's row as ``card``)."""

    model_id: str
    source: str  # job | champion
    task_type: str
    library: str  # Library
    base_model: str
    dataset_digest: str
    license: str  # a Hub license id (apache-2.0, mit, other...)
    license_found: bool  # False: no license in the script's repository; ``license`` is the default
    trained_at: datetime
    score: float | None = None
    measurement: Measurement | None = None
    script: ScriptSource | None = None  # None: the platform's house script
    run_id: int | None = None
    job_id: str | None = None
    # The script's reason for saving the base model's weights unchanged (contract.OUTCOME_FILE), once the
    # weights were found equal to the base model's; None: it said nothing of the kind, or it was not so.
    same_as_base: str | None = None
    # The script said so (contract.OUTCOME_FILE) but the weights do not match the base model's: the card
    # says the claim was not borne out instead of repeating it.
    same_as_base_refuted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "trained_at": self.trained_at.isoformat()}


@dataclass(frozen=True)
class BaseComparison:
    """A score beside the untrained base model's on the same rows, as the card, the API, the CLI and the
    dashboard say it."""

    base_score: float | None
    improvement: float | None  # how far the score is better than the base model's, in the metric's direction; < 0: worse
    note: str  # the sentence: better or worse by how much, or why there is no base score


def compared_with_base(score: float | None, measurement: Measurement | None) -> BaseComparison | None:
    """``score`` against the base model's score its measurement holds; None when the measurement says
    nothing of the base model (a champion's model, one registered before jobs scored the base model)."""
    if measurement is None or (measurement.base_score is None and measurement.base_missing is None):
        return None
    if score is None or measurement.base_score is None:
        return BaseComparison(measurement.base_score, None, not_compared(measurement.base_missing or "it has no score"))
    base = measurement.base_score
    improvement = float(lead(score, base, Direction(measurement.direction)))
    scores = (f"{measurement.metric} {score:.4g} against the untrained base model's {base:.4g} on the same validation "
              f"rows, {measurement.direction} is better")  # fmt: skip
    if improvement > 0:
        return BaseComparison(base, improvement, f"better than the untrained base model by {improvement:.4g} ({scores})")
    if improvement < 0:
        return BaseComparison(base, improvement, f"worse than the untrained base model by {-improvement:.4g} ({scores}): "
                                                 "training made it worse on these rows")  # fmt: skip
    return BaseComparison(base, improvement, f"no better than the untrained base model ({scores})")


def not_compared(why: str) -> str:
    """What is said of a score that has no base model's score beside it, and ``why``."""
    return f"not compared: {why}"


def is_hub_id(value: str) -> bool:
    """Whether ``value`` can be a Hub model id (``org/name``), not a local path or a trainarena asset."""
    return bool(_HUB_ID.fullmatch(value)) and not value.startswith(".")


def front_matter(facts: CardFacts) -> dict[str, Any]:
    """The card's YAML metadata: the Hub's keys, and the dataset digest under a key of our own (the
    Hub's ``datasets`` key names Hub datasets, which a digest is not)."""
    data: dict[str, Any] = {}
    if is_hub_id(facts.base_model):
        data["base_model"] = facts.base_model
    data["library_name"] = facts.library
    data["license"] = facts.license
    data["tags"] = ["trainarena", facts.task_type, *(["lora"] if facts.library in (Library.PEFT, Library.DIFFUSERS) else [])]
    data["dataset_digest"] = f"sha256:{facts.dataset_digest}"
    return data


def same_as_base_note(why: str) -> str:
    """What the card, the API and the CLI say of a model whose script saved the base model's weights
    unchanged, with the script's reason ``why``."""
    return (f"training found no improvement over the base model, so the delivered weights equal the base model's "
            f"(the training script's reason: {why})")  # fmt: skip


# What the card, the API and the CLI say of a model whose script claimed to save the base model's
# weights unchanged when the weights it saved do not match them.
SAME_AS_BASE_REFUTED = "the training script said it saved the base model's weights unchanged, but they differ from the base model's"


def _score_lines(facts: CardFacts) -> list[str]:
    if facts.score is None:
        return ["- Score: none (no data was held out to measure it)"]
    how = facts.measurement.describe() if facts.measurement is not None else "how it was measured was not recorded"
    compared = compared_with_base(facts.score, facts.measurement)
    return [f"- Score: {facts.score:.6g}", f"- Measured as: {how}",
            *([f"- Against the base model: {compared.note}"] if compared is not None else [])]  # fmt: skip


def render_model_card(facts: CardFacts) -> str:
    """The whole ``README.md``: front matter between ``---`` lines, then the body."""
    metadata = yaml.safe_dump(front_matter(facts), sort_keys=False, allow_unicode=True)
    origin = "a customer's training job" if facts.job_id else "a tournament champion's run"
    # The card goes to customers and the Hub: a repository on the server is named as the API names it to them.
    script = f"{shown_source(facts.script.repo_url)}@{facts.script.commit}" if facts.script is not None else f"{HOUSE_SCRIPT} (the platform's own reference script)"
    license_note = "" if facts.license_found else " (no license found in the script's repository: the operator's default)"
    lines = [
        f"# {facts.model_id}",
        "",
        f"{'An' if facts.task_type[:1] in 'aeiou' else 'A'} {facts.task_type} model trained on trainarena by {origin}.",
        "",
        f"- Task type: {facts.task_type}",
        # A job's customer named its base model (one of jobs.base_models); a champion's card is read by anyone.
        f"- Base model: {facts.base_model if facts.job_id else shown_file(facts.base_model)}",
        f"- Weights: {facts.library} ({'LoRA adapter' if facts.library != Library.TRANSFORMERS else 'full model'}, safetensors)",
        f"- Dataset digest: sha256:{facts.dataset_digest}",
        f"- Training script: {script}",
        *([f"- Competitor: {facts.script.competitor}"] if facts.script is not None else []),
        *_score_lines(facts),
        *([f"- Same as the base model: {same_as_base_note(facts.same_as_base)}"] if facts.same_as_base is not None else []),
        *([f"- Weights: {SAME_AS_BASE_REFUTED}"] if facts.same_as_base_refuted else []),
        f"- Trained: {facts.trained_at.isoformat(timespec='seconds')}",
        *([f"- Run: {facts.run_id}"] if facts.run_id is not None else []),
        *([f"- Job: {facts.job_id}"] if facts.job_id is not None else []),
        f"- License: {facts.license}{license_note}",
    ]
    return f"---\n{metadata}---\n\n" + "\n".join(lines) + "\n"


def parse_front_matter(card: str) -> dict[str, Any]:
    """The YAML metadata of a card :func:`render_model_card` wrote (what the Hub reads)."""
    if not card.startswith("---\n"):
        raise ValueError("a model card starts with a '---' line of YAML front matter")
    end = card.index("\n---\n", 4)
    return yaml.safe_load(card[4:end]) or {}
