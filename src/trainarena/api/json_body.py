"""JSON request bodies are checked as strictly as query parameters (strict_query): a key the route does
not take is refused (422 naming it and the keys the body takes; errors.py words it), not ignored: a
customer who sent ``budget_seconds`` to POST /v1/jobs got the default tier, and a misspelt
``validaton_share`` a job that was never scored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """The base of every JSON body a route reads: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")
