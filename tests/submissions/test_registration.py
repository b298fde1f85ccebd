"""register() against real git repositories made in tmp: success, every rejection, the cache."""

from __future__ import annotations

import subprocess
from pathlib import PurePosixPath

import pytest
from submission_repos import MANIFEST, TRAIN_PY, RepoFactory, git

from trainarena.contract import TaskType
from trainarena.settings import RegistrationRules, Settings
from trainarena.submissions import RegistrationError, checkout_path, register
from trainarena.submissions.git import check_commit_sha, normalize_repo_url, repo_cache_key
from trainarena.submissions.registration import _escapes, repo_mirror_path


def test_registers_local_repo_and_exports_the_tree(settings: Settings, make_repo: RepoFactory) -> None:
    repo, sha = make_repo({"trainarena.toml": MANIFEST, "train.py": TRAIN_PY, "lib/util.py": "X = 1\n"})

    result = register(settings, name="alice", repo=str(repo), commit=sha)

    assert result.commit == sha
    assert result.tree_hash == git(repo, "rev-parse", f"{sha}^{{tree}}")
    assert result.entrypoint == "train.py"
    assert result.manifest.task_types == (TaskType.INSTRUCT,)
    assert result.repo_url == repo.resolve().as_uri()
    assert result.file_count == 3
    assert result.checkout_dir == checkout_path(settings, sha)
    assert (result.checkout_dir / "train.py").read_text() == TRAIN_PY
    assert (result.checkout_dir / "lib" / "util.py").read_text() == "X = 1\n"
    assert not (result.checkout_dir / ".git").exists()
    mirror = repo_mirror_path(settings, result.repo_url)
    assert mirror.parent == settings.cache_dir / "repos"
    assert mirror.name == repo_cache_key(result.repo_url)


def test_exports_the_registered_commit_not_the_branch_head(settings: Settings, make_repo: RepoFactory) -> None:
    repo, first = make_repo()
    second = make_repo.commit(repo, {"train.py": "print('second')\n"})

    old = register(settings, name="old", repo=f"file://{repo}", commit=first.upper())
    new = register(settings, name="new", repo=str(repo), commit=second)

    assert old.commit == first
    assert (old.checkout_dir / "train.py").read_text() == TRAIN_PY
    assert (new.checkout_dir / "train.py").read_text() == "print('second')\n"
    assert old.tree_hash != new.tree_hash


def test_later_commit_is_fetched_into_the_existing_cache(settings: Settings, make_repo: RepoFactory) -> None:
    repo, first = make_repo()
    register(settings, name="a", repo=str(repo), commit=first)
    later = make_repo.commit(repo, {"extra.py": "Y = 2\n"})

    result = register(settings, name="b", repo=str(repo) + "/", commit=later)

    assert (result.checkout_dir / "extra.py").exists()


def test_executable_bit_and_inner_symlink_survive_export(settings: Settings, make_repo: RepoFactory) -> None:
    repo, _ = make_repo()
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "alias.py").symlink_to("train.py")
    sha = make_repo.commit(repo, {})

    result = register(settings, name="x", repo=str(repo), commit=sha)

    assert (result.checkout_dir / "run.sh").stat().st_mode & 0o111
    assert (result.checkout_dir / "alias.py").is_symlink()
    assert (result.checkout_dir / "alias.py").read_text() == TRAIN_PY


@pytest.mark.parametrize(
    ("commit", "looks_like"),
    [
        ("abc1234", "abbreviated SHA"),
        ("main", "branch"),
        ("feature/fast-lora", "branch"),
        ("v1.2.0", "tag"),
        ("1.0", "tag"),
        ("", "empty"),
        ("a" * 64, "too long"),
    ],
)
def test_commit_must_be_a_full_sha(commit: str, looks_like: str) -> None:
    with pytest.raises(RegistrationError, match=looks_like) as error:
        check_commit_sha(commit)
    if commit:
        assert "40-character" in str(error.value)


def test_branch_name_is_rejected_before_any_fetch(settings: Settings, make_repo: RepoFactory) -> None:
    repo, _ = make_repo()
    with pytest.raises(RegistrationError, match="branch"):
        register(settings, name="a", repo=str(repo), commit="main")
    assert not (settings.cache_dir / "repos").exists()


def test_tag_is_rejected(settings: Settings, make_repo: RepoFactory) -> None:
    repo, _ = make_repo()
    git(repo, "tag", "v1.0")
    with pytest.raises(RegistrationError, match="tag"):
        register(settings, name="a", repo=str(repo), commit="v1.0")


def test_unknown_commit_is_rejected(settings: Settings, make_repo: RepoFactory) -> None:
    repo, _ = make_repo()
    with pytest.raises(RegistrationError, match="is not in"):
        register(settings, name="a", repo=str(repo), commit="0" * 40)


def test_blob_sha_is_not_a_commit(settings: Settings, make_repo: RepoFactory) -> None:
    repo, sha = make_repo()
    blob = git(repo, "rev-parse", f"{sha}:train.py")
    with pytest.raises(RegistrationError, match="is not in"):
        register(settings, name="a", repo=str(repo), commit=blob)


def test_missing_manifest(settings: Settings, make_repo: RepoFactory) -> None:
    repo, sha = make_repo({"train.py": TRAIN_PY, "weights/model.safetensors": b"w" * 64})
    with pytest.raises(RegistrationError) as refused:
        register(settings, name="a", repo=str(repo), commit=sha)
    # Named before the weights: a repository without a manifest is the wrong one, whatever else it holds.
    assert str(refused.value).startswith(f"no trainarena.toml at the root of the commit's tree ({sha[:12]})")


def test_entrypoint_missing_from_tree(settings: Settings, make_repo: RepoFactory) -> None:
    manifest = '[trainarena]\ncontract = 1\nentrypoint = "src/train.py"\n'
    repo, sha = make_repo({"trainarena.toml": manifest, "train.py": TRAIN_PY})
    with pytest.raises(RegistrationError, match=rf"'src/train.py'.*not in the commit's tree \({sha[:12]}\)$"):
        register(settings, name="a", repo=str(repo), commit=sha)


def test_entrypoint_escaping_the_repo(settings: Settings, make_repo: RepoFactory) -> None:
    manifest = '[trainarena]\ncontract = 1\nentrypoint = "../train.py"\n'
    repo, sha = make_repo({"trainarena.toml": manifest, "train.py": TRAIN_PY})
    with pytest.raises(RegistrationError, match="escapes the repository"):
        register(settings, name="a", repo=str(repo), commit=sha)


def test_entrypoint_that_is_a_directory(settings: Settings, make_repo: RepoFactory) -> None:
    manifest = '[trainarena]\ncontract = 1\nentrypoint = "pkg.py"\n'
    repo, sha = make_repo({"trainarena.toml": manifest, "pkg.py/inner.py": ""})
    with pytest.raises(RegistrationError, match=rf"'pkg.py' .* is a folder, not a file, in the commit's tree \({sha[:12]}\)"):
        register(settings, name="a", repo=str(repo), commit=sha)


def test_big_files_and_weights_are_named(settings: Settings, make_repo: RepoFactory) -> None:
    small_limit = settings.model_copy(update={"registration": RegistrationRules(max_file_mb=0.01)})
    files = {
        "trainarena.toml": MANIFEST, "train.py": TRAIN_PY,
        "data/big.jsonl": b"x" * 20_000,
        "weights/model.safetensors": b"\0" * 10, "ckpt/Model.PT": b"\0",
    }
    repo, sha = make_repo(files)
    with pytest.raises(RegistrationError) as error:
        register(small_limit, name="a", repo=str(repo), commit=sha)
    message = str(error.value)
    assert "weights/model.safetensors" in message
    assert "ckpt/Model.PT" in message
    assert "data/big.jsonl (0.0 MB)" in message
    assert "larger than 0.01 MB" in message
    assert not checkout_path(settings, sha).exists()


def test_safetensors_file_alone_is_rejected(settings: Settings, make_repo: RepoFactory) -> None:
    repo, sha = make_repo({"trainarena.toml": MANIFEST, "train.py": TRAIN_PY, "adapter.safetensors": b"{}"})
    with pytest.raises(RegistrationError, match="adapter.safetensors"):
        register(settings, name="a", repo=str(repo), commit=sha)


def test_offending_paths_are_capped(settings: Settings, make_repo: RepoFactory) -> None:
    rules = settings.model_copy(update={"registration": RegistrationRules(max_reported_paths=3)})
    files: dict[str, str | bytes] = {f"w{i}.npy": b"0" for i in range(7)}
    repo, sha = make_repo({"trainarena.toml": MANIFEST, "train.py": TRAIN_PY, **files})
    with pytest.raises(RegistrationError, match=r"w2\.npy \(and 4 more\)"):
        register(rules, name="a", repo=str(repo), commit=sha)


def test_repo_size_limit(settings: Settings, make_repo: RepoFactory) -> None:
    rules = settings.model_copy(update={"registration": RegistrationRules(max_repo_mb=0.01)})
    repo, sha = make_repo({"trainarena.toml": MANIFEST, "train.py": TRAIN_PY, "a.py": "#" * 6000, "b.py": "#" * 6000})
    with pytest.raises(RegistrationError, match="over the 0.01 MB limit"):
        register(rules, name="a", repo=str(repo), commit=sha)


def test_symlink_leaving_the_repo_is_rejected(settings: Settings, make_repo: RepoFactory) -> None:
    repo, _ = make_repo()
    (repo / "secrets.py").symlink_to("../../etc/passwd")
    sha = make_repo.commit(repo, {})
    with pytest.raises(RegistrationError, match="secrets.py -> ../../etc/passwd"):
        register(settings, name="a", repo=str(repo), commit=sha)


def test_a_symlink_that_climbs_out_through_another_link_is_rejected(settings: Settings, make_repo: RepoFactory) -> None:
    """Read as text, ``a``'s target stays inside; followed through ``b -> .`` it climbs two levels out."""
    repo, _ = make_repo()
    (repo / "b").symlink_to(".")
    (repo / "a").symlink_to("b/b/../..")
    (repo / "ok").symlink_to("b/b/train.py")  # through links, but inside
    sha = make_repo.commit(repo, {})
    with pytest.raises(RegistrationError, match="symbolic links must stay inside the repository: a -> b/b/../..$"):
        register(settings, name="a", repo=str(repo), commit=sha)


@pytest.mark.parametrize(("target", "problem"), [(b"train\xff.py", "that is not UTF-8"), (b"train\0.py", "holding a NUL byte")])
def test_a_symlink_target_the_export_cannot_write_is_refused_in_words(settings: Settings, make_repo: RepoFactory, target: bytes,
                                                                       problem: str) -> None:  # fmt: skip
    """The check read a target with replacement characters, the export strictly: a UnicodeDecodeError (or
    ValueError, for a NUL a crafted tree can hold) answered a registration with a 500."""
    repo, _ = make_repo()
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input=target, capture_output=True, check=True).stdout.decode().strip()
    git(repo, "update-index", "--add", "--cacheinfo", f"120000,{blob},odd")
    git(repo, "commit", "--quiet", "-m", "odd link")
    with pytest.raises(RegistrationError, match=f"symbolic link odd points at a name {problem}"):
        register(settings, name="a", repo=str(repo), commit=git(repo, "rev-parse", "HEAD"))


@pytest.mark.parametrize(("links", "escaping"), [
    ({"sub/up": ".."}, False),
    ({"sub/up": "../.."}, True),
    ({"loop": "loop"}, True),  # followed past the limit
    ({"d": "sub", "sub/x": "../d/../.."}, True),
    ({"d": "sub/deeper", "sub/x": "../d/.."}, False),
])
def test_links_are_followed_through_the_tree(links: dict[str, str], escaping: bool) -> None:
    assert any(_escapes(list(PurePosixPath(path).parent.parts) + target.split("/"), links)
               for path, target in links.items()) is escaping


def test_submodule_is_rejected(settings: Settings, make_repo: RepoFactory) -> None:
    repo, sha = make_repo()
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sha},vendor/lib")
    git(repo, "commit", "--quiet", "-m", "submodule")
    with pytest.raises(RegistrationError, match="submodules.*vendor/lib"):
        register(settings, name="a", repo=str(repo), commit=git(repo, "rev-parse", "HEAD"))


@pytest.mark.parametrize("name", ["", "-dash", "has space", "a/b", "x" * 65])
def test_bad_names(settings: Settings, name: str) -> None:
    with pytest.raises(RegistrationError, match="competitor name"):
        register(settings, name=name, repo=".", commit="0" * 40)


def test_unreachable_remote_is_a_registration_error(settings: Settings, tmp_path) -> None:
    not_a_repo = tmp_path / "empty"
    not_a_repo.mkdir()
    with pytest.raises(RegistrationError, match="is not a git repository: commit the script there") as refused:
        register(settings, name="a", repo=str(not_a_repo), commit="0" * 40)
    assert "\n" not in str(refused.value) and "Please make sure" not in str(refused.value)  # one line, not git's three
    assert list((settings.cache_dir / "repos").iterdir()) == []  # no half-made cache left behind
    with pytest.raises(RegistrationError, match=r"git clone of https://127\.0\.0\.1:9/x failed: unable to access"):
        register(settings, name="a", repo="https://127.0.0.1:9/x.git", commit="0" * 40)


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("https://GitHub.com/Org/Repo.git", "https://github.com/Org/Repo"),
        ("https://github.com/Org/Repo/", "https://github.com/Org/Repo"),
        ("git@github.com:Org/Repo.git", "ssh://git@github.com/Org/Repo"),
        ("ssh://git@GitHub.com/Org/Repo.git", "ssh://git@github.com/Org/Repo"),
    ],
)
def test_url_normalization(given: str, normalized: str) -> None:
    assert normalize_repo_url(given) == normalized


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("http://example.com/r.git", "http://"),
        ("git://example.com/r.git", "git://"),
        ("ext::sh -c touch% /tmp/pwned", "remote helper"),
        ("--upload-pack=touch /tmp/pwned", "must not start"),
        ("/no/such/dir", "not a directory"),
    ],
)
def test_url_rejections(given: str, message: str) -> None:
    with pytest.raises(RegistrationError, match=message):
        normalize_repo_url(given)


@pytest.mark.parametrize("given", ["https://alice:ghp_SECRET@GitHub.com/alice/trainer.git", "https://ghp_SECRET@github.com/a/b",
                                   "ssh://git:SECRET@host/a/b"])
def test_a_url_with_credentials_is_refused_without_echoing_them(given: str) -> None:
    """The URL is published (dashboard, API, signed records): a token in it would be public for good."""
    with pytest.raises(RegistrationError, match="carries credentials") as refused:
        normalize_repo_url(given)
    assert "SECRET" not in str(refused.value) and "alice:" not in str(refused.value)


def test_commit_amended_away_upstream_is_still_served_from_the_cache(settings: Settings, make_repo: RepoFactory) -> None:
    repo, first = make_repo()
    register(settings, name="a", repo=str(repo), commit=first)
    git(repo, "commit", "--amend", "--quiet", "-m", "amended")

    again = register(settings, name="b", repo=str(repo), commit=first)

    assert again.commit == first
