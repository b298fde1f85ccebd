"""Reward functions are untrusted code: they run only in the reward sandbox, each property of which has
an adversarial test here, and every failure names the function."""

from __future__ import annotations

import json
import os
import time

import pytest

from trainarena.settings import DataRules, Settings
from trainarena.tasks.grpo.rewards import RewardError, RewardSandbox, score_rewards
from trainarena.tasks.grpo.spec import RewardFunction, parse_reward_function


@pytest.fixture
def sandbox() -> RewardSandbox:
    settings = Settings()
    return RewardSandbox.from_rules(settings.sandbox, DataRules(reward_timeout_seconds=1.0))


def run(source: str, sandbox: RewardSandbox, completions=("7", "x")) -> list[list[float]]:
    function = parse_reward_function(1, {"source": source})
    return score_rewards((function,), ["p"] * len(completions), list(completions), {"answer": ["7"] * len(completions)}, sandbox)


def test_rewards_are_computed_with_the_extra_column(sandbox):
    correct = "def correct(completions, answer, **kw):\n    return [float(c == a) for c, a in zip(completions, answer)]\n"
    assert run(correct, sandbox) == [[1.0, 0.0]]


def test_reward_code_does_not_run_in_this_process(sandbox):
    source = "import os\nos.environ['TRAINARENA_REWARD_RAN'] = '1'\ndef f(completions, **kw):\n    return [os.getpid()] * len(completions)\n"
    (pid, _), = run(source, sandbox)
    assert "TRAINARENA_REWARD_RAN" not in os.environ and pid != os.getpid()


def test_network_is_unreachable(sandbox):
    source = (
        "def net(completions, **kw):\n    import socket\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=2)\n    return [1.0] * len(completions)\n"
    )
    with pytest.raises(RewardError, match=r"'net' failed: OSError.*(unreachable|Network)"):
        run(source, sandbox)


def test_files_outside_the_sandbox_cannot_be_read(sandbox, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hidden split")
    source = f"def peek(completions, **kw):\n    return [len(open({str(secret)!r}).read())] * len(completions)\n"
    with pytest.raises(RewardError, match="'peek' failed: FileNotFoundError"):
        run(source, sandbox)
    platform = f"def source(completions, **kw):\n    return [len(open({__file__!r}).read())] * len(completions)\n"
    with pytest.raises(RewardError, match="'source' failed: FileNotFoundError"):
        run(platform, sandbox)


def test_the_environment_is_empty_and_the_root_read_only(sandbox):
    source = (
        "def env(completions, **kw):\n    import os\n    try:\n        open('/usr/evil', 'w')\n        wrote = 1\n"
        "    except OSError:\n        wrote = 0\n    return [len(os.environ) * 10 + wrote] * len(completions)\n"
    )
    (values, ) = run(source, sandbox)
    assert values[0] % 10 == 0 and values[0] // 10 <= 3  # LANG, PYTHONDONTWRITEBYTECODE (+ bwrap's PWD)


def test_an_infinite_loop_times_out_and_is_named(sandbox):
    started = time.monotonic()
    with pytest.raises(RewardError, match="'spin' failed: took longer than 1 s"):
        run("def spin(completions, **kw):\n    while True:\n        pass\n", sandbox)
    assert time.monotonic() - started < 8


@pytest.mark.slow  # waits for the sandbox's whole wall clock (start-up allowance included)
def test_a_loop_that_swallows_the_alarm_is_killed_with_the_sandbox(sandbox):
    source = (
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "def stubborn(completions, **kw):\n    while True:\n        pass\n"
    )
    started = time.monotonic()
    with pytest.raises(RewardError, match="'stubborn' was still running"):
        run(source, sandbox)
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def boom(completions, **kw):\n    raise ValueError('no')\n", "'boom' failed: ValueError: no"),
        ("def text(completions, **kw):\n    return ['high'] * len(completions)\n", "'text' returned a non-numeric"),
        ("def short(completions, **kw):\n    return [1.0]\n", "'short' must return a list of 2 numbers, got 1"),
        ("def nan(completions, **kw):\n    return [float('nan')] * len(completions)\n", "'nan' returned a non-numeric or non-finite"),
        ("def none(completions, **kw):\n    return None\n", "'none' failed: TypeError"),
    ],
)
def test_bad_results_name_the_function(sandbox, source, message):
    with pytest.raises(RewardError, match=message):
        run(source, sandbox)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"source": "def f(:", "weight": 1}, "not valid Python"),
        ({"source": "x = 1\n"}, "defines no function"),
        ({"source": "def f(completions): pass", "weight": -1}, "weight' must be a number >= 0"),
        ({"source": "def f(completions): pass", "name": "g"}, "no function named 'g'"),
        ({"source": "def f(completions): pass", "range": [1, 1]}, r"'range' must be \[low, high\].*low < high, got \[1, 1\]"),
        ({"source": "def f(completions): pass", "range": [0, "1"]}, "'range' must be"),
        ({"source": "def f(completions): pass", "range": [0, float("inf")]}, "'range' must be"),
        ({"source": "def f(completions): pass", "range": 1.0}, "'range' must be"),
    ],
)
def test_spec_checks_the_source_without_running_it(entry, message):
    from trainarena.tasks.base import DatasetError

    with pytest.raises(DatasetError, match=message):
        parse_reward_function(1, entry)


def test_the_named_function_is_used(sandbox):
    function = RewardFunction("second", "def first(completions, **kw):\n    return [0.0]*len(completions)\n"
                              "def second(completions, **kw):\n    return [2.0]*len(completions)\n", 1.0)
    assert score_rewards((function,), ["p"], ["c"], {}, sandbox) == [[2.0]]


def test_a_value_outside_the_declared_range_names_the_function_and_the_range(sandbox):
    source = "def scaled(completions, **kw):\n    return [1.5] * len(completions)\n"
    declared = parse_reward_function(1, {"source": source, "range": [0, 1]})
    with pytest.raises(RewardError, match=r"'scaled' returned 1.5, outside its declared range \[0, 1\]"):
        score_rewards((declared,), ["p"], ["c"], {}, sandbox)
    wider = parse_reward_function(1, {"source": source, "range": [-2, 2]})
    assert score_rewards((wider,), ["p"], ["c"], {}, sandbox) == [[1.5]]


def test_the_reward_span_is_the_lead_unit_only_when_every_weighted_range_is_declared():
    import doctest

    from trainarena.tasks.grpo import spec as spec_module
    from trainarena.tasks.grpo.spec import GrpoDatasetSpec

    assert doctest.testmod(spec_module).failed == 0

    def spec(*entries):
        return GrpoDatasetSpec.from_dict({"source": "x", "field_prompt": "q", "reward_functions": list(entries)})

    source = "def {0}(completions, **kw):\n    return [0.0] * len(completions)\n"
    correct, formatted = {"source": source.format("a"), "weight": 1.0, "range": [0, 1]}, {"source": source.format("b"), "weight": 0.5}
    assert spec(correct).reward_span() == 1.0
    assert spec(correct, formatted).reward_span() is None  # one weighted reward's range is unknown
    assert spec(correct, formatted | {"weight": 0.0}).reward_span() == 1.0  # weight 0: it adds nothing
    assert spec(correct, formatted | {"range": [-1, 3]}).reward_span() == pytest.approx(2 / 3 * 1 + 1 / 3 * 4)
    round_trip = spec(correct).to_dict()  # the spec written for scripts and read back keeps the range
    assert GrpoDatasetSpec.from_dict(round_trip).reward_functions[0].range == (0.0, 1.0)


def test_the_evaluation_child_gets_the_reward_sandbox_as_the_platform_configured_it():
    rules = Settings().sandbox.model_copy(update={"run_as_pool": (2_000_000_000, 8)})
    sandbox = RewardSandbox.from_rules(rules, DataRules(reward_timeout_seconds=1.0))
    assert RewardSandbox.from_dict(json.loads(json.dumps(sandbox.to_dict()))) == sandbox  # as the child reads it
    assert sandbox.limits.run_as_pool == (2_000_000_000, 8)
