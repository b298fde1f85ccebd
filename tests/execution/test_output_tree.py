"""What a hostile script leaves in /output once it has ended: setuid files and writable folders lose
those modes, a tree nested too deep or too wide is refused with the reason (never a RecursionError),
and the platform deletes such trees however deep they go."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from deep_trees import nest
from trainarena.contract import TaskType
from trainarena.execution import artifacts
from trainarena.execution.artifacts import check_output, validate_artifact
from trainarena.execution.output_tree import remove_tree, settle_modes, walk
from trainarena.settings import ArtifactRules

RULES = ArtifactRules()


def _model_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    save_file({"weight": torch.zeros(2, 3)}, str(path / "model.safetensors"))
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_setuid_file_and_writable_folders_lose_those_modes_before_the_check(tmp_path: Path) -> None:
    output = _model_dir(tmp_path / "output")
    shutil.copyfile("/usr/bin/id", output / "suid_id")
    os.chmod(output / "suid_id", 0o6755)  # setuid + setgid, as the audit's probe left it
    (output / "notes.txt").write_text("x")
    os.chmod(output / "notes.txt", 0o2666)
    (output / "ww").mkdir()
    os.chmod(output / "ww", 0o1777)
    (output / "ww" / "sub").mkdir()
    os.chmod(output / "ww" / "sub", 0o000)  # unreadable: opened up, not skipped
    os.chmod(output, 0o777)
    assert validate_artifact(output, TaskType.INSTRUCT, RULES).ok  # the check alone looks at no mode

    check = check_output(output, TaskType.INSTRUCT, RULES)

    assert check.ok and check.digest is not None
    assert _mode(output / "suid_id") == 0o755  # executable, no longer setuid or setgid
    assert _mode(output / "notes.txt") == 0o644
    assert _mode(output / "model.safetensors") == _mode(output / "config.json") == 0o644
    assert _mode(output) == _mode(output / "ww") == _mode(output / "ww" / "sub") == 0o755
    if os.geteuid() == 0:
        assert {(p.lstat().st_uid, p.lstat().st_gid) for p in [output, *output.rglob("*")]} == {(0, 0)}


def test_a_symlink_is_left_alone_and_its_target_keeps_its_mode(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    os.chmod(outside, 0o600)
    output = _model_dir(tmp_path / "output")
    (output / "link").symlink_to(outside)
    settle_modes(output, max_depth=4, max_entries=100)
    assert _mode(outside) == 0o600
    assert not check_output(output, TaskType.INSTRUCT, RULES).ok  # the check still refuses the link


def test_1500_nested_folders_are_refused_with_the_reason_not_a_recursion_error(tmp_path: Path) -> None:
    output = _model_dir(tmp_path / "output")
    nest(output, 1500)
    for check in (validate_artifact(output, TaskType.INSTRUCT, RULES), check_output(output, TaskType.INSTRUCT, RULES)):
        assert not check.ok and check.digest is None
        assert "nested deeper than 32 folders" in (check.reason or "")
    remove_tree(output)  # pytest's own cleanup of tmp_path would meet the RecursionError


def test_the_depth_and_entry_caps_are_settings(tmp_path: Path) -> None:
    output = _model_dir(tmp_path / "output")
    nest(output, 3)
    assert check_output(output, TaskType.INSTRUCT, RULES).ok
    assert "deeper than 2" in (check_output(output, TaskType.INSTRUCT, ArtifactRules(max_depth=2)).reason or "")
    for i in range(20):
        (output / f"extra-{i}.json").write_text("{}")
    check = check_output(output, TaskType.INSTRUCT, ArtifactRules(max_entries=20))
    assert not check.ok and "more than 20 files and folders" in (check.reason or "")
    assert [rel for rel, _ in walk(output, max_depth=8, max_entries=100)][:3] == ["a", "a/a", "a/a/a"]


def test_any_error_while_checking_refuses_the_artifact_instead_of_escaping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output = _model_dir(tmp_path / "output")

    def explode(path: Path, max_header_bytes: int) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(artifacts, "check_safetensors", explode)
    check = check_output(output, TaskType.INSTRUCT, RULES)
    assert not check.ok and check.reason == "the output could not be checked (RecursionError: maximum recursion depth exceeded)"


def test_remove_tree_deletes_trees_deeper_than_recursion_and_path_length_allow(tmp_path: Path) -> None:
    deep = tmp_path / "deep"
    deep.mkdir()
    nest(deep, 1500)
    with pytest.raises(RecursionError):  # what the platform used before
        shutil.rmtree(deep, ignore_errors=True)
    remove_tree(deep)
    assert not deep.exists()

    long = tmp_path / "long"  # 40 levels of 200-character names: 8,000 characters, past PATH_MAX
    long.mkdir()
    nest(long, 40, name="n" * 200)
    (long / "locked").mkdir()
    (long / "locked" / "f").write_text("x")
    os.chmod(long / "locked", 0o000)
    remove_tree(long)
    assert not long.exists()


def test_remove_tree_never_follows_a_link(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "file").write_text("x")
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    (doomed / "to-folder").symlink_to(kept, target_is_directory=True)
    (doomed / "to-file").symlink_to(kept / "file")
    remove_tree(doomed)
    assert not doomed.exists() and (kept / "file").read_text() == "x"
    (tmp_path / "a-link").symlink_to(kept, target_is_directory=True)
    remove_tree(tmp_path / "a-link")
    assert not (tmp_path / "a-link").is_symlink() and (kept / "file").exists()
    remove_tree(tmp_path / "absent")  # nothing there: nothing to do
