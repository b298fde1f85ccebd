"""Run untrusted GRPO reward functions on rows, inside a bubblewrap sandbox, never in this process.

What it protects against (each has an adversarial test in tests/tasks/test_grpo_rewards.py):
- Network: ``--unshare-all`` leaves only a down loopback; no TCP/UDP/DNS.
- Reading files: the sandbox root is an empty tmpfs with read-only binds of /usr, a short list of
  /etc entries (``SandboxRules.etc_files``), the Python installation and the job's own folder; the data
  directory, the hidden splits, the platform's source and environment variables are not there.
- Writing: everything is read-only but a private /tmp and the job's output folder.
- Running forever: each call gets ``DataRules.reward_timeout_seconds`` (SIGALRM inside); code that
  blocks or ignores the alarm is killed with its whole PID namespace when the job's wall clock
  (per-call limit x calls + start-up) runs out, and the function that was running is named.
- Memory, processes, disk: ``DataRules.reward_memory_limit_mb``, ``reward_max_processes`` (a fork
  bomb stops there) and ``reward_disk_mb`` (/tmp and each file), through a cgroup per call where the
  host has one (``execution.stdlib_sandbox`` says what stands in where it has not).
What it does not protect against: kernel exploits; a reward function lying about its own results
(the results are checked for shape and type only: reward code is the task author's, not a competitor's).

The sandbox itself is ``execution.stdlib_sandbox``: the platform's base interpreter in isolated mode
(``-I -S``), so reward code has the standard library only.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from trainarena.execution import SandboxUnavailable
from trainarena.execution.stdlib_sandbox import StdlibSandbox, run_stdlib_program
from trainarena.settings import DataRules, SandboxRules
from trainarena.tasks.base import DatasetError
from trainarena.tasks.grpo.spec import RewardFunction

STARTUP_SECONDS = 10.0  # the interpreter's start inside bwrap, on a loaded machine

# Runs inside the sandbox: /job/payload.json in, /out/results.jsonl out (one line per function, written
# as each finishes, so that the parent can name the function that was running when time ran out).
RUNNER = r'''
import json, math, signal
payload = json.load(open("/job/payload.json"))
def on_alarm(*_):
    raise TimeoutError
signal.signal(signal.SIGALRM, on_alarm)
out = open("/out/results.jsonl", "a")
for function in payload["functions"]:
    name = function["name"]
    out.write(json.dumps({"started": name}) + "\n"); out.flush()
    try:
        namespace = {"__name__": "reward_" + name}
        signal.setitimer(signal.ITIMER_REAL, payload["timeout"])
        exec(compile(function["source"], "<reward " + name + ">", "exec"), namespace)
        values = namespace[name](prompts=list(payload["prompts"]), completions=list(payload["completions"]),
                                 **{k: list(v) for k, v in payload["columns"].items()})
        signal.setitimer(signal.ITIMER_REAL, 0)
        values = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else repr(v)[:60] for v in values]
        result = {"name": name, "values": values}
    except TimeoutError:
        result = {"name": name, "error": "took longer than %g s" % payload["timeout"]}
    except BaseException as error:
        signal.setitimer(signal.ITIMER_REAL, 0)
        result = {"name": name, "error": "%s: %s" % (type(error).__name__, str(error)[:300])}
    out.write(json.dumps(result) + "\n"); out.flush()
'''


class RewardError(DatasetError):
    """A reward function failed (raised, timed out, returned something that is not a list of numbers);
    the message names the function."""


@dataclass(frozen=True)
class RewardSandbox:
    """How reward functions are run: each function's time limit, and the sandbox's binds and limits
    (``limits.wall_seconds`` is set per call, from the number of functions)."""

    timeout_seconds: float
    limits: StdlibSandbox

    @classmethod
    def from_rules(cls, sandbox: SandboxRules, data: DataRules) -> RewardSandbox:
        limits = StdlibSandbox(0.0, data.reward_memory_limit_mb, sandbox.etc_files, sandbox.sandbox_uid,
                               data.reward_max_processes, data.reward_disk_mb, sandbox.cgroup_parent,
                               sandbox.run_as, sandbox.run_as_pool)  # fmt: skip
        return cls(data.reward_timeout_seconds, limits)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardSandbox:
        limits = data["limits"]
        parent = None if limits["cgroup_parent"] is None else Path(limits["cgroup_parent"])
        pool = None if limits["run_as_pool"] is None else tuple(limits["run_as_pool"])
        return cls(data["timeout_seconds"], StdlibSandbox(**{**limits, "etc_files": tuple(limits["etc_files"]),
                                                             "cgroup_parent": parent, "run_as_pool": pool}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the evaluation child receives it in its request."""
        limits = asdict(self.limits)
        return {"timeout_seconds": self.timeout_seconds,
                "limits": {**limits, "etc_files": list(limits["etc_files"]), "cgroup_parent": None if self.limits.cgroup_parent is None else str(self.limits.cgroup_parent)}}  # fmt: skip


def score_rewards(
    functions: tuple[RewardFunction, ...],
    prompts: list[str],
    completions: list[str],
    columns: dict[str, list[str]],
    sandbox: RewardSandbox,
) -> list[list[float]]:
    """Each function's reward for each completion (``[function][row]``), run in one sandbox. Raises
    :class:`RewardError` naming the first function that failed."""
    payload = {
        "functions": [{"name": f.name, "source": f.source} for f in functions],
        "prompts": prompts,
        "completions": completions,
        "columns": columns,
        "timeout": sandbox.timeout_seconds,
    }
    with tempfile.TemporaryDirectory(prefix="trainarena-rewards-") as scratch:
        job, out = Path(scratch) / "job", Path(scratch) / "out"
        job.mkdir()
        out.mkdir()
        (job / "payload.json").write_text(json.dumps(payload))
        (job / "runner.py").write_text(RUNNER)
        os.chmod(out, 0o777)  # the sandbox user (nobody) writes its results here
        for path in (scratch, job, job / "payload.json", job / "runner.py"):
            os.chmod(path, 0o755 if Path(path).is_dir() else 0o644)
        limit = STARTUP_SECONDS + sandbox.timeout_seconds * len(functions) * 1.5
        try:
            timed_out = run_stdlib_program(job, out, "runner.py", replace(sandbox.limits, wall_seconds=limit))
        except SandboxUnavailable as error:
            raise RewardError(f"reward functions run only inside bubblewrap: {error}") from None
        results = _read_results(out / "results.jsonl")
    return _check_results(functions, results, len(completions), timed_out, limit)


def _read_results(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    lines = []
    for line in path.read_text(errors="replace").splitlines()[: 10_000]:
        with contextlib.suppress(json.JSONDecodeError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                lines.append(entry)
    return lines


def _check_results(
    functions: tuple[RewardFunction, ...], results: list[dict[str, Any]], rows: int, timed_out: bool, limit: float
) -> list[list[float]]:
    finished = {entry["name"]: entry for entry in results if "name" in entry and "started" not in entry}
    scores = []
    for function in functions:
        entry = finished.get(function.name)
        if entry is None:
            reason = f"was still running when the sandbox's {limit:g} s ran out" if timed_out else "did not run (the sandbox failed to start or was killed)"
            raise RewardError(f"reward function '{function.name}' {reason}")
        if "error" in entry:
            raise RewardError(f"reward function '{function.name}' failed: {entry['error']}")
        values = entry.get("values")
        if not isinstance(values, list) or len(values) != rows:
            shown = len(values) if isinstance(values, list) else type(values).__name__
            raise RewardError(f"reward function '{function.name}' must return a list of {rows} numbers, got {shown}")
        bad = [v for v in values if isinstance(v, str) or not math.isfinite(v)]
        if bad:
            raise RewardError(f"reward function '{function.name}' returned a non-numeric or non-finite value: {bad[0]}")
        outside = [v for v in values if function.range is not None and not function.range[0] <= v <= function.range[1]]
        if outside:
            low, high = function.range or (0.0, 0.0)
            raise RewardError(f"reward function '{function.name}' returned {outside[0]!r}, outside its declared range "
                              f"[{low:g}, {high:g}]: fix the function or its 'range'")
        scores.append([float(v) for v in values])
    return scores
