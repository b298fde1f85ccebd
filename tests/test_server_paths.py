"""How texts and JSON views name the server to those who are not operators (reporting.server_paths): a
run folder's sandbox paths as the script saw them, other paths under the data dir relative to it, the
install's as <platform>; sources on the server, task files and drivers' hosts left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainarena.reporting.server_paths import SERVER_SOURCE, ServerPaths, public_json, shown_entrant, shown_file, shown_source

PATHS = ServerPaths(Path("/srv/ta/data"), "runs", (Path("/opt/venv"), Path("/usr")))


@pytest.mark.parametrize(("text", "shown"), [
    ("artifact: the output /srv/ta/data/runs/jobs/job-1/attempt-1/output/w.safetensors: Permission denied",
     "artifact: the output /output/w.safetensors: Permission denied"),
    ("/srv/ta/data/runs/tournament-3/r0-m1/inputs/train.jsonl", "/inputs/train.jsonl"),
    ("task: /srv/ta/data/uploads/file-1/data.jsonl: not valid JSON", "task: <data dir>/uploads/file-1/data.jsonl: not valid JSON"),
    ("/srv/ta/data/models/model-1/output/x", "<data dir>/models/model-1/output/x"),  # no run folder's
    ("the data dir is /srv/ta/data.", "the data dir is <data dir>."),
    # An ellipsis after a path is not its own (a path followed by '...' was left whole), nor a colour code before it.
    ("loading /srv/ta/data/runs/7/output/model...", "loading /output/model..."),
    ("see /srv/ta/data/uploads/a.parquet... and /srv/ta/data/x.tar.gz.", "see <data dir>/uploads/a.parquet... and <data dir>/x.tar.gz."),
    ("\x1b[31m/srv/ta/data/hidden/x.parquet\x1b[0m missing", "<data dir>/hidden/x.parquet missing"),
    ("/srv/ta/data..old and /srv/ta/data.old/x", "/srv/ta/data..old and /srv/ta/data.old/x"),  # other folders named alike
    ('File "/opt/venv/lib/python3.12/site-packages/torch/x.py", line 3', 'File "<platform>/lib/python3.12/site-packages/torch/x.py", line 3'),
    # Not under the server's folders: another folder that starts alike, an address, /usr (too wide to hide).
    ("/srv/ta/data2/x and https://example.com/srv/ta/data/x and /usr/lib/x", "/srv/ta/data2/x and https://example.com/srv/ta/data/x and /usr/lib/x"),
])  # fmt: skip
def test_a_text_names_paths_under_the_servers_folders_without_them(text: str, shown: str) -> None:
    assert PATHS.hide(text) == shown


def test_the_data_dir_is_hidden_as_given_and_as_resolved(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    paths = ServerPaths(tmp_path / "link")
    assert paths.hide(f"{tmp_path}/real/uploads/f and {tmp_path}/link/uploads/f") == "<data dir>/uploads/f and <data dir>/uploads/f"


def test_sources_files_and_entrants_on_the_server_are_named_without_their_folders() -> None:
    for remote in ("https://github.com/a/b.git", "git@github.com:a/b.git", None):
        assert shown_source(remote) == remote
    assert shown_source("/home/op/tree") == shown_source("file:///srv/repo") == SERVER_SOURCE
    assert (shown_file("/srv/datasets/rows.jsonl"), shown_file("org/dataset"), shown_file(None)) == ("rows.jsonl (on the server)", "org/dataset", None)
    assert (shown_entrant("/home/op/my-tree"), shown_entrant("alice")) == ("my-tree (tree)", "alice")


def test_a_json_view_loses_hosts_pids_and_server_folders_at_any_depth() -> None:
    view = {"driver": {"alive": True, "host": "gpu-7", "pid": 42, "since": None}, "repo_url": "/home/op/tree",
            "base_model": "/srv/models/tiny", "score": 1.5,
            "runs": [{"failure": "missing /srv/ta/data/runs/x/output", "driver": None, "entrant": "/home/op/tree"}],
            "attempt_history": [{"driver": "gpu-7:42", "reason": "ok"}],
            "code": {"pinned": "file:///srv/champ@abc1"}, "script": "git@github.com:a/b.git@abc1", "jobs": [{"script": "house script"}]}  # fmt: skip
    assert public_json(view, PATHS) == {
        "driver": {"alive": True, "host": None, "pid": None, "since": None}, "repo_url": SERVER_SOURCE,
        "base_model": "tiny (on the server)", "score": 1.5,
        "runs": [{"failure": "missing /output", "driver": None, "entrant": "tree (tree)"}],
        "attempt_history": [{"driver": None, "reason": "ok"}],
        "code": {"pinned": f"{SERVER_SOURCE}@abc1"}, "script": "git@github.com:a/b.git@abc1", "jobs": [{"script": "house script"}],
    }  # fmt: skip
