"""The GRPO dataset spec: a prompt column, an optional extra column handed to the rewards, and one or
more reward functions (Python source, weight >= 0). Modelled on Gradients' ``GrpoDatasetType``.

A task file's ``[dataset]`` table::

    [dataset]
    source = "data/questions.jsonl"
    field_prompt = "question"           # required
    field_extra = "answer"              # optional: passed to every reward as a keyword argument of that name
    prompt_format = "{prompt}"
    system_prompt = ""
    system_format = "{system}\\n"
    response_separator = "\\n### Response:\\n"
    [[dataset.reward_functions]]
    weight = 1.0
    source = '''
    def correct(completions, answer, **kwargs):
        return [1.0 if c.strip() == a else 0.0 for c, a in zip(completions, answer)]
    '''

A reward function has TRL's signature: ``f(prompts, completions, **columns) -> list[float]`` (one
number per completion). Its name is ``name`` when given, else the last top-level ``def`` of its source.
An optional ``range = [low, high]`` declares the values it can return (checked on every call): when
every weighted function declares one, the weighted reward span is the task's *lead unit*, the scale a
boss lead is measured in (docs/rules.md, "The paired rule"), since a reward's zero is arbitrary.
The source is only parsed here (``ast``), never run: running happens in the sandbox (``rewards.py``).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from trainarena.tasks.base import DatasetError
from trainarena.tasks.spec_checks import SCRIPT_KEYS, check_format, require_strings, spec_fields

MAX_SOURCE_CHARS = 20_000

SCORING = {
    "metric": "grpo_reward",
    "direction": "higher",
    "score": "mean over hidden prompts of sum_i (w_i / sum w) * reward_i(completion) - kl_coef * KL, where the "
    "completion is sampled from the trained model with fixed settings and seed",
    "kl": "sum over the completion's tokens of logp_trained - logp_base (a Monte-Carlo estimate of "
    "KL(trained || base) on the sampled completion)",
    "prompt": "system_format (if a system text) + prompt_format + response_separator, tokenized with the base "
    "tokenizer's special tokens; generation stops at eos",
    "kl_coef": None,
    "sampling": None,
}


@dataclass(frozen=True)
class RewardFunction:
    name: str
    source: str
    weight: float
    range: tuple[float, float] | None = None  # the values it can return, when declared


@dataclass(frozen=True)
class GrpoDatasetSpec:
    source: str
    field_prompt: str
    reward_functions: tuple[RewardFunction, ...]
    field_extra: str | None = None
    prompt_format: str = "{prompt}"
    system_format: str = "{system}\n"
    system_prompt: str = ""
    response_separator: str = "\n### Response:\n"
    split: str = "train"

    def __post_init__(self) -> None:
        require_strings(self, ("source", "field_prompt"))
        if self.field_extra in ("prompts", "completions"):
            raise DatasetError(f"dataset spec: field_extra may not be named '{self.field_extra}' (a reward argument)")
        check_format("prompt_format", self.prompt_format, {"prompt"})
        check_format("system_format", self.system_format, {"system"})
        if not self.reward_functions:
            raise DatasetError("dataset spec: 'reward_functions' needs at least one function")
        if sum(f.weight for f in self.reward_functions) <= 0:
            raise DatasetError("dataset spec: the reward weights sum to 0; at least one weight must be above 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any], max_functions: int = 8) -> GrpoDatasetSpec:
        given = spec_fields(cls, data, {"source", "field_prompt", "reward_functions"}, SCRIPT_KEYS | {"dropped_rows"})
        raw = data["reward_functions"]
        if not isinstance(raw, list | tuple) or len(raw) > max_functions:
            raise DatasetError(f"dataset spec: 'reward_functions' must be a list of at most {max_functions} tables")
        functions = tuple(parse_reward_function(i, entry) for i, entry in enumerate(raw, start=1))
        names = [f.name for f in functions]
        if len(set(names)) != len(names):
            raise DatasetError(f"dataset spec: reward function names must be distinct, got {names}")
        return cls(**given | {"reward_functions": functions})

    def columns(self) -> dict[str, str]:
        roles = {"prompt": self.field_prompt}
        if self.field_extra:
            roles["extra"] = self.field_extra
        return roles

    def weights(self) -> list[float]:
        """Weights normalised to sum to 1, in declaration order."""
        total = sum(f.weight for f in self.reward_functions)
        return [f.weight / total for f in self.reward_functions]

    def reward_span(self) -> float | None:
        """The weighted reward's span, ``sum_i w_i (high_i - low_i)`` over normalised weights, when every
        function of weight above 0 declares its range; else None.

        >>> f = "def f(completions, **kw): return [0] * len(completions)"
        >>> GrpoDatasetSpec("x", "q", (RewardFunction("f", f, 2.0, (0.0, 1.0)), RewardFunction("g", f.replace("f(", "g("), 1.0, (-1.0, 2.0)))).reward_span()
        1.6666666666666665
        """
        weighted = [(w, f.range) for w, f in zip(self.weights(), self.reward_functions, strict=True) if w > 0]
        if any(declared is None for _, declared in weighted):
            return None
        return sum(w * (declared[1] - declared[0]) for w, declared in weighted if declared is not None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"reward_functions": [asdict(f) for f in self.reward_functions]}

    def for_script(self, train_file: str, kl_coef: float, sampling: dict[str, Any], dropped_rows: int) -> dict[str, Any]:
        data = self.to_dict() | {"source": train_file, "file": train_file, "task_type": "grpo"}
        return data | {"scoring": SCORING | {"kl_coef": kl_coef, "sampling": sampling}, "dropped_rows": dropped_rows}


def parse_reward_function(index: int, entry: object) -> RewardFunction:
    """Check one ``reward_functions`` entry without running it: source parses, names a function, weight >= 0."""
    where = f"reward function #{index}"
    if not isinstance(entry, Mapping) or set(entry) - {"source", "weight", "name", "range"} or "source" not in entry:
        raise DatasetError(f"dataset spec: {where} must be a table with 'source', optional 'weight', 'name' and 'range'")
    source, weight = entry["source"], entry.get("weight", 1.0)
    if not isinstance(source, str) or not source.strip() or len(source) > MAX_SOURCE_CHARS:
        raise DatasetError(f"dataset spec: {where}: 'source' must be Python source of 1-{MAX_SOURCE_CHARS} characters")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
        raise DatasetError(f"dataset spec: {where}: 'weight' must be a number >= 0, got {weight!r}")
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise DatasetError(f"dataset spec: {where}: not valid Python ({error.msg}, line {error.lineno})") from None
    defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    name = entry.get("name") or (defined[-1] if defined else None)
    if not name or name not in defined:
        raise DatasetError(f"dataset spec: {where}: the source defines no function {'named ' + repr(name) if name else ''}".rstrip())
    return RewardFunction(name=str(name), source=source, weight=float(weight), range=_declared_range(where, entry.get("range")))


def _declared_range(where: str, value: object) -> tuple[float, float] | None:
    if value is None:
        return None
    numbers = list(value) if isinstance(value, list | tuple) else []
    if (len(numbers) != 2 or any(isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) for v in numbers)
            or not numbers[0] < numbers[1]):
        raise DatasetError(f"dataset spec: {where}: 'range' must be [low, high], two finite numbers with low < high, got {value!r}")
    return float(numbers[0]), float(numbers[1])


def render_prompt(spec: GrpoDatasetSpec, row: Mapping[str, object]) -> str:
    """The prompt a completion is generated for.

    >>> spec = GrpoDatasetSpec("x", "q", (RewardFunction("f", "def f(completions, **kw): return [0]*len(completions)", 1.0),))
    >>> render_prompt(spec, {"q": "add 2 and 3"})
    'add 2 and 3\\n### Response:\\n'
    """
    system = spec.system_prompt
    prefix = spec.system_format.format(system=system) if system else ""
    return prefix + spec.prompt_format.format(prompt=str(row[spec.field_prompt])) + spec.response_separator
