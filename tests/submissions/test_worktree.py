"""A working tree as an unregistered submission: what is snapshotted, what registration's checks
refuse, and what is recorded about the tree (HEAD, dirty)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from trainarena.settings import Settings
from trainarena.submissions import RegistrationError
from trainarena.submissions.worktree import snapshot_worktree

MANIFEST = '[trainarena]\ncontract = 1\nentrypoint = "train.py"\n'


def _git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def _tree(root: Path) -> Path:
    root.mkdir()
    (root / "trainarena.toml").write_text(MANIFEST)
    (root / "train.py").write_text("print('hi')\n")
    return root


def test_git_tree_snapshot_follows_gitignore_and_records_head(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo")
    (root / ".gitignore").write_text("checkpoints/\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "one")
    settings = Settings(data_dir=tmp_path / "data")
    clean = snapshot_worktree(settings, root)
    assert (clean.commit, clean.dirty) == (_git(root, "rev-parse", "HEAD"), False)

    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "step-10.safetensors").write_bytes(b"w" * 64)  # ignored: not part of the tree
    (root / "helper.py").write_text("X = 1\n")  # untracked, not ignored: part of it
    edited = snapshot_worktree(settings, root)
    assert edited.dirty is True and edited.snapshot_dir != clean.snapshot_dir
    assert sorted(p.name for p in edited.snapshot_dir.iterdir()) == [".gitignore", "helper.py", "train.py", "trainarena.toml"]
    assert snapshot_worktree(settings, root).snapshot_dir == edited.snapshot_dir  # content-addressed


def test_a_folder_inside_another_repository_records_no_commit_of_that_repository(tmp_path: Path) -> None:
    # The README's `cp -r examples/competitors/baseline my-trainer` inside the trainarena checkout: the
    # checkout's HEAD is no commit of the script (registering it fails), so the run must not name it.
    outer = tmp_path / "checkout"
    outer.mkdir()
    (outer / "README.md").write_text("the platform\n")
    _git(outer, "init", "-q")
    _git(outer, "add", "-A")
    _git(outer, "commit", "-qm", "platform")
    snapshot = snapshot_worktree(Settings(data_dir=tmp_path / "data"), _tree(outer / "my-trainer"))
    assert snapshot.commit is None
    assert snapshot.dirty is True  # untracked in the checkout: git still sees the files
    assert sorted(p.name for p in snapshot.snapshot_dir.iterdir()) == ["train.py", "trainarena.toml"]


def test_plain_folder_skips_caches_and_has_no_commit(tmp_path: Path) -> None:
    root = _tree(tmp_path / "plain")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "train.cpython-312.pyc").write_bytes(b"\0")
    snapshot = snapshot_worktree(Settings(data_dir=tmp_path / "data"), root)
    assert (snapshot.commit, snapshot.dirty, snapshot.entrypoint) == (None, None, "train.py")
    assert sorted(p.name for p in snapshot.snapshot_dir.iterdir()) == ["train.py", "trainarena.toml"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: (root / "data.parquet").write_bytes(b"0"), "model weights or datasets must not be in the repository"),
        (lambda root: (root / "trainarena.toml").unlink(), "no trainarena.toml at the root of the folder"),
        (lambda root: (root / "leak").symlink_to("/etc/passwd"), "symbolic links must stay inside the repository"),
    ],
)
def test_registration_checks_refuse_the_tree(tmp_path: Path, make, message: str) -> None:
    root = _tree(tmp_path / "bad")
    make(root)
    with pytest.raises(RegistrationError, match=message):
        snapshot_worktree(Settings(data_dir=tmp_path / "data"), root)
    assert not (tmp_path / "data" / "cache" / "worktrees").exists()


def test_a_missing_folder_or_a_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RegistrationError, match="no such folder"):
        snapshot_worktree(Settings(data_dir=tmp_path / "data"), tmp_path / "nowhere")
    (tmp_path / "train.py").write_text("pass\n")
    with pytest.raises(RegistrationError, match="a file, not a folder"):
        snapshot_worktree(Settings(data_dir=tmp_path / "data"), tmp_path / "train.py")


def test_a_missing_entrypoint_names_the_working_tree_not_a_commit(tmp_path: Path) -> None:
    """The QA found "not in the commit's tree" for a plain working tree, which has no commit."""
    root = _tree(tmp_path / "plain")
    (root / "train.py").unlink()
    (root / "helper.py").write_text("X = 1\n")
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(RegistrationError) as plain:
        snapshot_worktree(settings, root)
    assert str(plain.value) == f"entrypoint 'train.py' named in trainarena.toml is not in the folder {root} (not a git repository)"
    _git(root, "init", "-q")
    with pytest.raises(RegistrationError) as in_git:
        snapshot_worktree(settings, root)
    assert str(in_git.value) == f"entrypoint 'train.py' named in trainarena.toml is not in the working tree {root}"
    (root / "train.py").mkdir()
    (root / "train.py" / "main.py").write_text("X = 1\n")
    with pytest.raises(RegistrationError, match=r"'train.py' named in trainarena.toml is a folder, not a file, in the working tree"):
        snapshot_worktree(settings, root)


def test_an_empty_folder_is_named_empty(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(RegistrationError, match=r"^the folder .*empty \(not a git repository\) is empty; give the folder"):
        snapshot_worktree(settings, tmp_path / "empty")
    _git(tmp_path / "empty", "init", "-q")
    with pytest.raises(RegistrationError, match=r"working tree .*empty holds no file git sees \(none yet, or all in .gitignore\)"):
        snapshot_worktree(settings, tmp_path / "empty")


def test_a_folder_without_a_manifest_is_named_as_such_before_its_big_files(tmp_path: Path) -> None:
    # `--repo ..` one folder too high (or a data directory): the missing manifest is the fix to name,
    # not the weights and sizes of a folder that is no competitor's.
    root = tmp_path / "parent"
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / "model.safetensors").write_bytes(b"w" * 64)
    (root / "notes.py").write_text("X = 1\n")
    with pytest.raises(RegistrationError) as refused:
        snapshot_worktree(Settings(data_dir=tmp_path / "data"), root)
    assert str(refused.value).startswith(f"no trainarena.toml at the root of the folder {root} (not a git repository)")
    assert "safetensors" not in str(refused.value)


def test_a_manifest_git_ignores_is_named_as_ignored_not_missing(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    _git(root, "init", "-q")
    (root / ".gitignore").write_text("*.toml\n")
    with pytest.raises(RegistrationError, match=r"^trainarena.toml is in the working tree .*tree but git ignores it \(.gitignore\)"):
        snapshot_worktree(Settings(data_dir=tmp_path / "data"), root)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda snapshot: (snapshot / "train.py").write_text("print('INJECTED')\n"),
        lambda snapshot: (snapshot / "__pycache__").mkdir() or (snapshot / "__pycache__" / "train.pyc").write_bytes(b"x"),
        lambda snapshot: (snapshot / "train.py").chmod(0o755),
    ],
)
def test_a_cached_snapshot_changed_since_is_copied_again_from_the_tree(tmp_path: Path, tamper) -> None:
    root = _tree(tmp_path / "repo")
    settings = Settings(data_dir=tmp_path / "data")
    first = snapshot_worktree(settings, root)
    tamper(first.snapshot_dir)
    again = snapshot_worktree(settings, root)
    assert again.snapshot_dir == first.snapshot_dir  # the same tree names the same snapshot
    assert sorted(p.name for p in again.snapshot_dir.iterdir()) == ["train.py", "trainarena.toml"]
    assert (again.snapshot_dir / "train.py").read_text() == "print('hi')\n"
    assert (again.snapshot_dir / "train.py").stat().st_mode & 0o777 == 0o644
    assert not [p for p in again.snapshot_dir.parent.iterdir() if p.name.startswith(".")]  # nothing left aside
