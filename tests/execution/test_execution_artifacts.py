"""Artifact validation: real safetensors pass; pickle, symlinks, fakes and oversize artifacts do not."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from trainarena.contract import TaskType
from trainarena.execution import artifacts
from trainarena.execution.artifacts import validate_artifact
from trainarena.settings import ArtifactRules

RULES = ArtifactRules()


def _model_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    save_file({"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, str(path / "model.safetensors"))
    return path


def test_a_real_safetensors_model_is_accepted_with_a_stable_digest(tmp_path: Path) -> None:
    first = validate_artifact(_model_dir(tmp_path / "a"), TaskType.INSTRUCT, RULES)
    second = validate_artifact(_model_dir(tmp_path / "b"), TaskType.INSTRUCT, RULES)
    assert first.ok and first.reason is None
    assert first.total_bytes == sum(p.stat().st_size for p in (tmp_path / "a").iterdir())
    assert first.digest is not None and len(first.digest) == 64
    assert first.digest == second.digest  # same content, same digest, wherever it lives
    (tmp_path / "b" / "config.json").write_text("{}")
    assert validate_artifact(tmp_path / "b", TaskType.INSTRUCT, RULES).digest != first.digest


def test_peft_adapter_and_image_lora_layouts_are_accepted(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    save_file({"lora_A": torch.zeros(2, 2)}, str(adapter / "adapter_model.safetensors"))
    assert validate_artifact(adapter, TaskType.DPO, RULES).ok
    image = tmp_path / "image"
    image.mkdir()
    save_file({"lora": torch.ones(3)}, str(image / "pytorch_lora_weights.safetensors"))
    assert validate_artifact(image, TaskType.IMAGE, RULES).ok
    assert not validate_artifact(image, TaskType.INSTRUCT, RULES).ok  # no config.json


# What a script may leave as its adapter's config instead of a JSON object, and the reason that names it.
BROKEN_ADAPTER_CONFIGS = {
    "not JSON": ("{'peft_type': 'LORA'", r"adapter_config.json is not readable JSON \(JSONDecodeError"),
    "not UTF-8": (b'{"peft_type": "\xff"}', r"adapter_config.json is not readable JSON \(UnicodeDecodeError"),
    "a list": ("[1, 2]", r"adapter_config.json is not a JSON object \(it is a list\)"),
    "past Python's stack": ("[" * 100_000 + "]" * 100_000, "adapter_config.json is nested deeper than 32 levels"),
    "past the nesting limit": ('{"a": ' * 40 + "1" + "}" * 40, "adapter_config.json is nested deeper than 32 levels"),
    "too large": ('{"a": "' + "x" * (artifacts.CONFIG_MAX_BYTES + 1) + '"}', "adapter_config.json is larger than a config may be"),
}


@pytest.mark.parametrize("broken", sorted(BROKEN_ADAPTER_CONFIGS))
def test_an_adapter_config_that_is_no_json_object_refuses_the_artifact_by_name(tmp_path: Path, broken: str) -> None:
    """The evaluator and the registry read it: refused here, it is the script's invalid artifact, never a
    platform fault when the model is registered."""
    content, reason = BROKEN_ADAPTER_CONFIGS[broken]
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    config = adapter / "adapter_config.json"
    config.write_bytes(content) if isinstance(content, bytes) else config.write_text(content)
    save_file({"lora_A": torch.zeros(2, 2)}, str(adapter / "adapter_model.safetensors"))
    check = artifacts.check_output(adapter, TaskType.INSTRUCT, RULES)
    assert not check.ok and check.digest is None
    assert re.match(reason, check.reason or ""), check.reason


def test_pickle_weights_are_rejected_by_name(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    torch.save({"w": torch.zeros(1)}, model / "optimizer.pt")
    check = validate_artifact(model, TaskType.INSTRUCT, RULES)
    assert not check.ok and "optimizer.pt" in (check.reason or "") and check.digest is None


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.txt", "model.safetensors"])
def test_symlinks_are_rejected(tmp_path: Path, target: str) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    model = _model_dir(tmp_path / "m")
    (model / "link.json").symlink_to(target)
    check = validate_artifact(model, TaskType.INSTRUCT, RULES)
    assert not check.ok and "symlink link.json" in (check.reason or "")


def test_a_symlinked_output_dir_is_rejected(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    (tmp_path / "out").symlink_to(model)
    assert not validate_artifact(tmp_path / "out", TaskType.INSTRUCT, RULES).ok


def test_a_missing_output_folder_is_named_as_the_script_saw_it(tmp_path: Path) -> None:
    """The reason reaches competitors and customers: /output, not the run folder's place on the server."""
    check = validate_artifact(tmp_path / "run" / "output", TaskType.INSTRUCT, RULES)
    assert check.reason == "the output folder (/output) is missing (or is a symlink)"


def test_an_unreadable_output_file_is_named_under_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model_dir(tmp_path / "run" / "output")

    def unreadable(folder: Path, files: list[Path]) -> str:
        raise PermissionError(13, "Permission denied", str(folder / "model.safetensors"))

    monkeypatch.setattr(artifacts, "artifact_digest", unreadable)
    check = validate_artifact(model, TaskType.INSTRUCT, RULES)
    assert check.reason == "the output could not be read (/output/model.safetensors: Permission denied)"


def _fake(path: Path, payload: bytes) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(payload)
    return path


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\x80\x04\x95", "too short"),
        (b"PK\x03\x04" + b"\0" * 60, "header length"),
        (struct.pack("<Q", 7) + b"not json", "not JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", 2**40) + b"{}", "header length"),
    ],
)
def test_fake_safetensors_are_rejected(tmp_path: Path, payload: bytes, why: str) -> None:
    check = validate_artifact(_fake(tmp_path / "m", payload), TaskType.INSTRUCT, RULES)
    assert not check.ok and why in (check.reason or "")


def test_a_torch_pickle_renamed_to_safetensors_is_rejected(tmp_path: Path) -> None:
    model = _fake(tmp_path / "m", b"")
    torch.save({"w": torch.zeros(4)}, model / "model.safetensors")
    check = validate_artifact(model, TaskType.INSTRUCT, RULES)
    assert not check.ok and "not safetensors" in (check.reason or "")


def test_tensor_offsets_past_the_end_are_rejected(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    payload = struct.pack("<Q", len(header)) + header + b"\0" * 8  # 8 bytes of data, 16 claimed
    check = validate_artifact(_fake(tmp_path / "m", payload), TaskType.INSTRUCT, RULES)
    assert not check.ok and "malformed entry" in (check.reason or "")


def test_size_limit_and_empty_output(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    (model / "big.safetensors").write_bytes(b"\0" * (1024 * 1024 + 1))
    check = validate_artifact(model, TaskType.INSTRUCT, ArtifactRules(max_artifact_mb=1))
    assert not check.ok and "above the limit of 1 MB" in (check.reason or "")
    (tmp_path / "empty").mkdir()
    assert validate_artifact(tmp_path / "empty", TaskType.INSTRUCT, RULES).reason == (
        "the output directory is empty: write safetensors weights into --output-dir (/output) before exiting; "
        "see docs/contract.md")


def test_missing_expected_files_are_named(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    check = validate_artifact(adapter, TaskType.CHAT, RULES)
    assert not check.ok and "adapter_model.safetensors" in (check.reason or "")


def test_a_model_saved_in_a_subfolder_is_refused_saying_to_save_at_the_top(tmp_path: Path) -> None:
    # save_pretrained(os.path.join(output_dir, "final")): the files are right, their place is not.
    output = tmp_path / "output"
    _model_dir(output / "final")
    check = validate_artifact(output, TaskType.INSTRUCT, RULES)
    assert not check.ok
    assert "at the top of the output directory" in (check.reason or "")
    assert "final/ holds config.json: save into --output-dir itself, not a subfolder" in (check.reason or "")


@pytest.mark.parametrize("name", [b"weights-\xff.json", b"notes\x1b[2J.txt"])
def test_a_file_name_that_is_not_printable_utf8_is_rejected(tmp_path: Path, name: bytes) -> None:
    """Names are recorded, listed and published: one that cannot be written as UTF-8 text is refused
    (it used to crash the artifact digest and stall the tournament on every resume)."""
    model = _model_dir(tmp_path / "m")
    with open(bytes(model) + b"/" + name, "wb") as out:
        out.write(b"{}")
    check = validate_artifact(model, TaskType.INSTRUCT, RULES)
    assert not check.ok and "file names in an artifact must be printable UTF-8" in (check.reason or "")


@pytest.mark.parametrize(
    ("shard", "why"),
    [("/srv/trainarena/runs/run-1/attempt-1/output/model.safetensors", "which is not a file beside it"),
     ("../run-1/model.safetensors", "which is not a file beside it"),
     ("missing.safetensors", "which is not a file beside it"),
     (None, "which is not a file beside it")],
)
def test_a_weight_index_may_name_only_shards_inside_the_artifact(tmp_path: Path, shard: str | None, why: str) -> None:
    artifact = _model_dir(tmp_path / "sharded")
    index = artifact / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"weight": "model.safetensors"}}))
    assert validate_artifact(artifact, TaskType.INSTRUCT, RULES).ok
    index.write_text(json.dumps({"weight_map": {"weight": "model.safetensors", "other": shard}}))
    check = validate_artifact(artifact, TaskType.INSTRUCT, RULES)
    assert not check.ok and f"model.safetensors.index.json maps weights to {shard!r}, {why}" in check.reason
    index.write_text("[1, 2]")
    assert "is not a readable weight index" in validate_artifact(artifact, TaskType.INSTRUCT, RULES).reason
