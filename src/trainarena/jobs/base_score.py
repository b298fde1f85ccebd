"""The untrained base model's score on a job's validation rows, the reference a customer reads the
job's score against.

Once the script's run has trained a model, and before the job's end is recorded, the job's executor
scores the base model as if it were the artifact (``evaluate_base_model``, the path ``trainarena run``
scores its base-model reference on: the same evaluator, its warm worker, no sandbox, no training) on
the task the job prepared: the same held-out rows, by the same evaluation. It is the platform's cost:
it runs after the script's run has ended, outside its budget. Its failure fails nothing: the job keeps
its own score and says why it has no base score. A job that kept no validation rows has none to score
it on; an image job's model is a LoRA, never compared with the base model alone
(``workbench.reference_origins``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from trainarena.runs import RunReport
from trainarena.store.models import RunOrigin
from trainarena.tasks.base import TaskDefinition
from trainarena.workbench import reference_origins

log = logging.getLogger(__name__)

NO_VALIDATION_ROWS = "the job kept no validation rows (validation_share 0), so no rows were held out to score the base model on"
NOT_FOR_IMAGES = "an image job's model is a LoRA, which the base model alone is not, so the base model is not scored as one"
# What the card and the customer read of a failed base evaluation: the error (a path on the server, a
# traceback's words) goes to the server's log only, since the card is a downloaded file nothing rewrites.
BASE_EVALUATION_FAILED = "the base model's evaluation failed on the platform's side (its error is in the server's log)"


class BaseModelEvaluator(Protocol):
    def evaluate_base_model(self, task: TaskDefinition) -> RunReport: ...


@dataclass(frozen=True)
class BaseScore:
    score: float | None
    missing: str | None  # why there is no score


def score_base_model(executor: BaseModelEvaluator, task: TaskDefinition, validation_share: float) -> BaseScore:
    """The base model's score on the rows ``task`` (prepared by the job) holds out, or why there is none."""
    if validation_share == 0:
        return BaseScore(None, NO_VALIDATION_ROWS)
    if RunOrigin.BASE_MODEL not in reference_origins(task.task_type):
        return BaseScore(None, NOT_FOR_IMAGES)
    try:
        report = executor.evaluate_base_model(task)
    except Exception as error:  # noqa: BLE001 - the platform's reference, not the job's result: the job goes on
        log.warning("job %s: scoring the base model failed: %s: %s", task.name, type(error).__name__, error, exc_info=True)
        return BaseScore(None, BASE_EVALUATION_FAILED)
    if report.evaluation is None or report.evaluation.score is None:
        log.warning("job %s: scoring the base model gave no score: %s", task.name, report.failure_reason)
        return BaseScore(None, BASE_EVALUATION_FAILED)
    return BaseScore(report.evaluation.score, None)
