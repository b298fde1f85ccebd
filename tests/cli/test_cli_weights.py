"""`trainarena weights publish | show | export` on a store with finished text and image tournaments."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_store import LONG_NAME, FinishedStore, ScriptedExecutor, fake_task
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.engine.published_weights import U16_MAX
from trainarena.orchestrator import create_tournament, drive
from trainarena.settings import Settings
from trainarena.store import get_competitor, open_store

HONEST_KEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
CRASHER_KEY = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
BURN_KEY = "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y"  # Substrate's dev key Charlie


def _invoke(args: list[str], exit_code: int = 0, width: int = 80) -> tuple[str, str]:
    result = CliRunner().invoke(app, args, env={"COLUMNS": str(width)})
    assert result.exit_code == exit_code, result.output
    return result.stdout, result.stderr


def _set_hotkeys(hotkeys: dict[str, str]) -> None:
    with open_store(Settings()) as store, store.transaction() as session:
        for name, hotkey in hotkeys.items():
            get_competitor(session, name).hotkey = hotkey


def _play_image_tournament() -> None:
    settings = Settings()
    with open_store(settings) as store:
        with store.transaction() as session:
            tournament_id = create_tournament(session, name="image-week-1", kind="image", seed=2,
                                              entrants=[LONG_NAME, "crasher"]).id  # fmt: skip
        assert drive(store, tournament_id, task_source=fake_task, executor=ScriptedExecutor(), rules=settings.rules,
                     weight_rules=settings.weights, work_dir=settings.work_dir) is not None  # fmt: skip


def _publish(at: datetime, exit_code: int = 0) -> dict:
    out, _ = _invoke(["weights", "publish", "--at", at.isoformat(), "--json"], exit_code)
    return json.loads(out) if exit_code == 0 else {}


def test_nothing_published_yet(finished_store: FinishedStore) -> None:
    out, _ = _invoke(["weights", "show"])
    assert "no weights published yet" in out
    assert json.loads(_invoke(["weights", "show", "--json"])[0]) == {"latest": None, "history": []}
    _, err = _invoke(["weights", "export", "--format", "csv"], exit_code=1)
    assert "no weights published yet" in err


def test_publish_before_any_tournament_finished_is_refused(finished_store: FinishedStore) -> None:
    _, err = _invoke(["weights", "publish", "--at", "2020-01-01T00:00:00"], exit_code=1)
    assert "no tournament had finished by 2020-01-01" in err


def test_publish_combines_both_kinds_in_hybrid_mode_and_keeps_a_history(
    finished_store: FinishedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    first = _publish(now)  # hybrid off: the text tournament alone, the image share undistributed
    assert first["new"] and first["ratio"] == 1.0 and first["week"] is None
    assert first["tournaments"]["text"]["name"] == "week-1" and first["tournaments"]["image"] is None
    assert first["weights"][0] == {"competitor": LONG_NAME, "hotkey": None, "weight": pytest.approx(0.25)}
    assert first["undistributed"] == pytest.approx(0.75)
    assert _publish(now + timedelta(minutes=1))["new"] is False  # the same tournaments: nothing new is stored

    _play_image_tournament()
    monkeypatch.setenv("TRAINARENA_WEIGHTS__HYBRID_START_DATE", (now - timedelta(days=8)).isoformat())
    second = _publish(datetime.now(UTC) + timedelta(seconds=1))  # hybrid week 1: ratio 0.5
    assert second["new"] and second["week"] == 1 and second["ratio"] == 0.5 and second["fallback"] == 0.5
    assert second["tournaments"]["image"]["name"] == "image-week-1"
    weights = {row["competitor"]: row["weight"] for row in second["weights"]}
    # the honest competitor is champion of both: 0.5 ratio * (0.5 text + 0.5 image) * 0.5 champion share
    assert weights[LONG_NAME] == pytest.approx(0.25)
    assert sum(weights.values()) + second["undistributed"] + second["fallback"] == pytest.approx(1.0)

    shown = json.loads(_invoke(["weights", "show", "--json"])[0])
    assert shown["latest"]["id"] == second["id"]
    assert [v["id"] for v in shown["history"]] == [second["id"], first["id"]]

    _, err = _invoke(["weights", "publish", "--at", now.isoformat()], exit_code=1)
    assert "only moves forward" in err


def test_a_time_later_than_now_is_refused_beyond_the_clock_skew_allowance(finished_store: FinishedStore) -> None:
    _, err = _invoke(["weights", "publish", "--at", "2999-01-01T00:00:00Z"], exit_code=1)
    assert "cannot publish at 2999-01-01T00:00:00+00:00: that is later than now" in err
    assert "weights.publish_clock_skew_seconds" in err
    assert json.loads(_invoke(["weights", "show", "--json"])[0])["latest"] is None  # nothing was stored
    skew = Settings().weights.publish_clock_skew_seconds
    assert _publish(datetime.now(UTC) + timedelta(seconds=skew / 2))["new"]  # another host's clock a little ahead


def test_a_vector_already_dated_in_the_future_says_how_to_recover(
    finished_store: FinishedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINARENA_WEIGHTS__PUBLISH_CLOCK_SKEW_SECONDS", "3600")
    future = _publish(datetime.now(UTC) + timedelta(minutes=50))  # as a store from before the check could hold
    monkeypatch.delenv("TRAINARENA_WEIGHTS__PUBLISH_CLOCK_SKEW_SECONDS")
    _, err = _invoke(["weights", "publish"], exit_code=1, width=400)
    assert f"Vector {future['id']} is dated in the future" in err
    assert f"delete weight_vector {future['id']} and its weight_vector_entry rows" in err


def test_show_fits_80_columns(finished_store: FinishedStore) -> None:
    _publish(datetime.now(UTC))
    out, _ = _invoke(["weights", "show"])
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert "week-1 (1)" in out and "undistributed  0.7500" in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert rows[0].split("│")[2].strip().startswith("honest-baseline") and "0.2500" in rows[0]


def test_json_and_csv_exports_parse_back(finished_store: FinishedStore, tmp_path: Path) -> None:
    _set_hotkeys({LONG_NAME: HONEST_KEY})
    published = _publish(datetime.now(UTC))
    as_json = json.loads(_invoke(["weights", "export", "--format", "json"])[0])
    assert as_json["weights"] == published["weights"] and as_json["weights"][0]["hotkey"] == HONEST_KEY

    target = tmp_path / "weights.csv"
    _, err = _invoke(["weights", "export", "--format", "csv", "--output", str(target)])
    assert f"to {target}" in err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [(r["competitor"], r["hotkey"], float(r["weight"])) for r in rows] == [
        (w["competitor"], w["hotkey"] or "", w["weight"]) for w in published["weights"]
    ]


def test_u16_export_leaves_out_competitors_without_a_hotkey(finished_store: FinishedStore) -> None:
    _publish(datetime.now(UTC))  # the honest champion (no hotkey) has 0.25, the rest is undistributed
    out, err = _invoke(["weights", "export", "--format", "u16"])
    vector = json.loads(out)
    assert vector["hotkeys"] == [] and vector["weights"] == [] and vector["left_out"] == [LONG_NAME]
    assert vector["unassigned"] == pytest.approx(1.0)
    assert f"left out of the u16 vector (no hotkey registered, or none with a uid): {LONG_NAME}" in err
    assert "REMAINDER_HOTKEY" in err


def test_u16_export_by_hotkey_with_a_burn_key(finished_store: FinishedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_hotkeys({LONG_NAME: HONEST_KEY, "crasher": CRASHER_KEY})
    published = _publish(datetime.now(UTC))
    champion = published["weights"][0]["weight"]
    out, err = _invoke(["weights", "export", "--format", "u16"])
    bare = json.loads(out)  # crasher's weight is 0: not sent, as bittensor does not send zeros
    assert bare["hotkeys"] == [HONEST_KEY] and bare["weights"] == [U16_MAX] and bare["left_out"] == []
    assert "REMAINDER_HOTKEY" in err

    monkeypatch.setenv("TRAINARENA_WEIGHTS__REMAINDER_HOTKEY", BURN_KEY)
    out, err = _invoke(["weights", "export", "--format", "u16", "--vector", str(published["id"])])
    vector = json.loads(out)
    assert vector["unassigned"] == 0.0 and err == ""
    assert vector["hotkeys"] == [BURN_KEY, HONEST_KEY]  # 0.75 remainder, then the 0.25 champion
    assert vector["weights"] == [U16_MAX, round(champion / published["undistributed"] * U16_MAX)]
    assert vector["holders"] == [["(undistributed)"], [LONG_NAME]]


def test_u16_export_with_uids_from_the_metagraph(finished_store: FinishedStore, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _set_hotkeys({LONG_NAME: HONEST_KEY})
    _publish(datetime.now(UTC))
    uids = tmp_path / "uids.json"
    uids.write_text(json.dumps({HONEST_KEY: 7, BURN_KEY: 0, CRASHER_KEY: 3}))
    monkeypatch.setenv("TRAINARENA_WEIGHTS__REMAINDER_HOTKEY", BURN_KEY)
    vector = json.loads(_invoke(["weights", "export", "--format", "u16", "--uids", str(uids)])[0])
    assert list(zip(vector["uids"], vector["hotkeys"], strict=True)) == [(0, BURN_KEY), (7, HONEST_KEY)]

    uids.write_text(json.dumps({BURN_KEY: 0}))  # the champion's hotkey is not on the subnet: left out, burned
    out, err = _invoke(["weights", "export", "--format", "u16", "--uids", str(uids)])
    assert json.loads(out)["uids"] == [0] and json.loads(out)["left_out"] == [LONG_NAME] and LONG_NAME in err

    uids.write_text(json.dumps({HONEST_KEY: 7}))
    _, err = _invoke(["weights", "export", "--format", "u16", "--uids", str(uids)], exit_code=1)
    assert "weights.remainder_hotkey has no uid" in err
    uids.write_text(json.dumps([1, 2]))
    _, err = _invoke(["weights", "export", "--format", "u16", "--uids", str(uids)], exit_code=1)
    assert "holds a list" in err
    _, err = _invoke(["weights", "export", "--format", "csv", "--uids", str(uids)], exit_code=1)
    assert "--uids applies to --format u16 only" in err


def test_a_malformed_hotkey_setting_is_named(finished_store: FinishedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _publish(datetime.now(UTC))
    monkeypatch.setenv("TRAINARENA_WEIGHTS__REMAINDER_HOTKEY", HONEST_KEY[:-1] + "Z")
    _, err = _invoke(["weights", "export", "--format", "u16"], exit_code=1)
    assert "weights.remainder_hotkey" in err and "checksum" in err
