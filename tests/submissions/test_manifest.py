"""parse_manifest: the manifest's fields and every way they can be wrong."""

from __future__ import annotations

import pytest

from trainarena.contract import TaskType
from trainarena.submissions import Manifest, RegistrationError, parse_manifest


def _toml(body: str) -> str:
    return "[trainarena]\n" + body


def test_minimal_manifest_accepts_every_task_type() -> None:
    manifest = parse_manifest(_toml('contract = 1\nentrypoint = "train.py"\n'))
    assert manifest == Manifest(contract=1, entrypoint="train.py", task_types=None)
    assert all(manifest.supports(t) for t in TaskType)


def test_task_types_restrict_support_and_are_deduplicated() -> None:
    manifest = parse_manifest(_toml('contract = 1\nentrypoint = "./src//train.py"\ntask_types = ["dpo", "chat", "dpo"]\n'))
    assert manifest.entrypoint == "src/train.py"
    assert manifest.task_types == (TaskType.DPO, TaskType.CHAT)
    assert manifest.supports(TaskType.CHAT)
    assert not manifest.supports(TaskType.IMAGE)


def test_other_tables_are_ignored() -> None:
    text = _toml('contract = 1\nentrypoint = "t.py"\n') + "[tool.mine]\nx = 1\n"
    assert parse_manifest(text).entrypoint == "t.py"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("contract = = 1", "not valid TOML"),
        ("x = " + "[" * 5000 + "]" * 5000, "nested deeper"),  # tomllib's RecursionError: a registration's 500
        ("[other]\nx = 1\n", r"no \[trainarena\] table"),
        (_toml('entrypoint = "train.py"\n'), "missing 'contract'"),
        (_toml('contract = 2\nentrypoint = "train.py"\n'), "contract version 2 is not supported"),
        (_toml('contract = 0\nentrypoint = "train.py"\n'), "contract version 0"),
        (_toml('contract = true\nentrypoint = "train.py"\n'), "must be an integer"),
        (_toml('contract = "1"\nentrypoint = "train.py"\n'), "must be an integer"),
        (_toml("contract = 1\n"), "missing 'entrypoint'"),
        (_toml('contract = 1\nentrypoint = ""\n'), "non-empty string"),
        (_toml('contract = 1\nentrypoint = "../train.py"\n'), "escapes the repository"),
        (_toml('contract = 1\nentrypoint = "src/../../train.py"\n'), "escapes the repository"),
        (_toml('contract = 1\nentrypoint = "/abs/train.py"\n'), "escapes the repository"),
        (_toml('contract = 1\nentrypoint = "src\\\\train.py"\n'), "forward slashes"),
        (_toml('contract = 1\nentrypoint = "train.sh"\n'), "ending in .py"),
        (_toml('contract = 1\nentry_point = "train.py"\n'), "unknown key.*entry_point.*did you mean 'entrypoint'"),
        (_toml('contract = 1\nentrypoint = "t.py"\ntask_type = ["instruct"]\n'), "did you mean 'task_types'"),
        ('[trainerena]\ncontract = 1\nentrypoint = "train.py"\n', r"no \[trainarena\] table \(found \[trainerena\]: a typo\?\)"),
        (_toml('contract = 1\nentrypoint = "t.py"\ntask_types = ["instruct", "rlhf"]\n'), "unknown task type.*'rlhf'"),
        (_toml('contract = 1\nentrypoint = "t.py"\ntask_types = []\n'), "non-empty list"),
        (_toml('contract = 1\nentrypoint = "t.py"\ntask_types = "instruct"\n'), "non-empty list"),
    ],
)
def test_invalid_manifests(text: str, message: str) -> None:
    with pytest.raises(RegistrationError, match=message):
        parse_manifest(text)
