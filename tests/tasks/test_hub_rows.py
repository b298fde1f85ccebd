"""A hub-shaped dataset value that loads nothing: the error gives both readings (a misspelt local
name, a hub id), an unreachable Hub fails at once instead of retrying for half a minute, and the hub
library's retry chatter stays off the terminal. No test reaches the network."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import datasets
import pytest
from huggingface_hub import constants

from trainarena.tasks import with_local_path
from trainarena.tasks.base import DatasetError
from trainarena.tasks.text import hub_rows

BOTH_READINGS = "rowz: no local file or folder of that name, and the Hugging Face dataset 'rowz' could not be loaded"


def _never_loaded(*_args, **_kwargs):
    raise AssertionError("load_dataset was called for an unreachable Hub")


def _unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", *hub_rows.PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub_rows, "hub_reachable", lambda: False)
    monkeypatch.setattr(datasets, "load_dataset", _never_loaded)


def test_an_unreachable_hub_fails_at_once_naming_both_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    _unreachable_hub(monkeypatch)
    with pytest.raises(DatasetError) as refused:
        hub_rows.read_hub_rows("rowz", "train")
    assert str(refused.value).startswith(f"{BOTH_READINGS}: the Hub cannot be reached from this host (set HF_HUB_OFFLINE=1")


def test_a_base_model_named_by_hub_id_gets_the_same_one_line_when_the_hub_is_unreachable(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # fmt: skip
    """It was the hub library's multi-line "ConnectError ... Please check your internet connection"."""
    import huggingface_hub

    from trainarena.pipeline import resolve_base_model

    _unreachable_hub(monkeypatch)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _never_loaded)
    monkeypatch.chdir(tmp_path)  # no folder someorg/somemodel here
    with pytest.raises(DatasetError) as refused:
        resolve_base_model("someorg/somemodel")
    assert str(refused.value) == (f"base model 'someorg/somemodel': no local folder of that name, and {hub_rows.HUB_UNREACHABLE}")
    assert hub_rows.HUB_UNREACHABLE.startswith("the Hub cannot be reached from this host (set HF_HUB_OFFLINE=1")


def test_the_local_reading_names_the_path_looked_for_where_the_task_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """A task file's folder, or the stand-in's (the data dir for an API body): not "beside the task
    file" where there is none."""
    _unreachable_hub(monkeypatch)
    with pytest.raises(DatasetError) as refused:
        hub_rows.read_hub_rows("org/rowz", "train")
    located = str(with_local_path(refused.value, Path("/srv/data/task in the request body")))
    assert located.startswith("org/rowz: no file or folder /srv/data/org/rowz, and the Hugging Face dataset 'org/rowz' "
                              "could not be loaded: the Hub cannot be reached from this host")
    other = DatasetError("rows.jsonl: row 3 is not JSON")
    assert with_local_path(other, Path("/srv/data/task.toml")) is other  # only the hub reading has a local path


def test_offline_mode_reads_the_cache_without_probing_and_keeps_the_retries_quiet(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_rows, "hub_reachable", _never_loaded)

    def retrying(*_args, **_kwargs):
        logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")
        raise ConnectionError("Couldn't reach 'rowz' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", retrying)
    level = logging.getLogger("huggingface_hub").level
    with caplog.at_level(logging.WARNING), pytest.raises(DatasetError) as refused:
        hub_rows.read_hub_rows("rowz", "train")
    assert str(refused.value) == f"{BOTH_READINGS} (ConnectionError: Couldn't reach 'rowz' on the Hub (OfflineModeIsEnabled))"
    assert "Retrying" not in caplog.text
    assert logging.getLogger("huggingface_hub").level == level  # put back


def test_the_probe_gives_up_quickly_on_a_closed_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:1")  # loopback, nothing listens on port 1
    started = time.monotonic()
    assert hub_rows.hub_reachable() is False
    assert time.monotonic() - started < hub_rows.PROBE_SECONDS + 1


def test_behind_a_proxy_the_library_is_asked_without_a_direct_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """A direct connection would not pass a proxy the library goes through: the probe would refuse a
    reachable Hub."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setattr(hub_rows, "hub_reachable", _never_loaded)
    monkeypatch.setattr(datasets, "load_dataset", lambda source, split: datasets.Dataset.from_list([{"q": source, "split": split}]))
    assert hub_rows.read_hub_rows("rowz", "train") == [{"q": "rowz", "split": "train"}]
