"""`trainarena export` and `trainarena verify` as a user types them: text at 80 columns, --json for
machines, exit status 0 only when everything checks out, and verify with no store at all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from records_store import RecordedStore, read_lines, write_lines
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.records.signing import load_key


@pytest.fixture
def cli(store_copy: RecordedStore, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(store_copy.data_dir))
    monkeypatch.setenv("COLUMNS", "80")
    return CliRunner()


def test_export_then_verify_in_text_at_80_columns(cli: CliRunner, store_copy: RecordedStore, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "bundle"
    exported = cli.invoke(app, ["export", str(store_copy.tournament_id), str(bundle)])
    assert exported.exit_code == 0, exported.output
    assert f"exported tournament {store_copy.tournament_id} (week-1): 34 log entries" in exported.output
    again = cli.invoke(app, ["export", str(store_copy.tournament_id), str(bundle)])
    assert again.exit_code == 1 and "is not an empty folder" in again.output

    offline = tmp_path / "no-such-data-dir"
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(offline))  # verify opens no store and needs no settings
    verified = cli.invoke(app, ["verify", str(bundle)])
    assert verified.exit_code == 0, verified.output
    assert not offline.exists()
    lines = verified.output.splitlines()
    # Consistent, but under the bundle's own key: the verdict says so rather than "verified".
    verdict = " ".join(line.strip() for line in lines[-2:])
    assert verdict.startswith("verified against the bundle's own key ") and verdict.endswith(
        "every check passed; compare that key with the operator's (--key) before trusting it"), lines[-3:]
    published = tmp_path / "operator.pem"
    published.write_text(load_key(store_copy.settings.operator_key_path).public_pem())
    trusted = cli.invoke(app, ["verify", str(bundle), "--key", str(published)])
    assert trusted.exit_code == 0 and trusted.output.splitlines()[-1] == "verified: every check passed", trusted.output
    long = [line for line in lines if len(line) > 80 and not line.startswith("bundle ")]  # a path runs on, whole
    assert not long, long
    assert "pass --key PEM" in verified.output
    assert any("inclusion proofs against the latest head" in line and " 34 " in line and " ok " in line for line in lines)


def test_export_folds_a_long_folder_within_the_width(cli: CliRunner, store_copy: RecordedStore, tmp_path: Path) -> None:
    bundle = tmp_path / ("bundle-of-the-first-weekly-tournament-" * 3) / "records"
    exported = cli.invoke(app, ["export", str(store_copy.tournament_id), str(bundle)])
    assert exported.exit_code == 0, exported.output
    lines = exported.output.splitlines()
    assert max(len(line) for line in lines) <= 80, lines  # it ran past the edge as one line
    hint = lines[next(number for number, line in enumerate(lines) if line.startswith("check it with:")):]
    assert "".join(line.strip() for line in hint) == f"check it with: trainarena verify{bundle}"  # whole, folded


def test_verify_json_and_a_failing_bundle(cli: CliRunner, store_copy: RecordedStore, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    assert cli.invoke(app, ["export", str(store_copy.tournament_id), str(bundle), "--json"]).exit_code == 0
    clean = cli.invoke(app, ["verify", str(bundle), "--json", "--key", str(bundle / "public_key.pem")])
    assert clean.exit_code == 0, clean.output
    report = json.loads(clean.stdout)
    assert report["ok"] is True and report["tournament"]["id"] == store_copy.tournament_id
    assert report["key"] == {"keyid": json.loads((bundle / "bundle.json").read_text())["log_id"],
                             "source": f"--key {bundle / 'public_key.pem'}", "trusted": True}
    assert {c["name"] for c in report["checks"]} >= {"signatures", "inclusion", "consistency", "bracket", "weights", "claims"}

    lines = read_lines(bundle / "entries.jsonl")
    write_lines(bundle / "entries.jsonl", [e for e in lines if e["kind"] != "round"])
    failed = cli.invoke(app, ["verify", str(bundle), "--json"])
    assert failed.exit_code == 1
    failing = {c["name"]: c["failures"] for c in json.loads(failed.stdout)["checks"] if not c["ok"]}
    assert "references" in failing and "bracket" in failing
    text = cli.invoke(app, ["verify", str(bundle)])
    assert text.exit_code == 1
    assert text.output.splitlines()[-1].startswith("NOT VERIFIED: ")
    assert "(decision of tournament 1): its rounds: names the round statement at entry" in " ".join(text.output.split())


def test_verify_with_a_key_file_that_is_no_public_key_pem_is_one_line_and_no_verdict(
        cli: CliRunner, store_copy: RecordedStore, tmp_path: Path) -> None:  # fmt: skip
    bundle = tmp_path / "bundle"
    assert cli.invoke(app, ["export", str(store_copy.tournament_id), str(bundle)]).exit_code == 0
    text_file, private_key = tmp_path / "hostname", store_copy.data_dir / "operator-ed25519.pem"
    text_file.write_text("vm\n")
    for key in (text_file, private_key):  # a private key given for the public one: a likely slip
        said = cli.invoke(app, ["verify", str(bundle), "--key", str(key)])
        assert (said.exit_code, said.output) == (2, f"error: --key {key}: not a PEM public key\n")
        as_json = cli.invoke(app, ["verify", str(bundle), "--key", str(key), "--json"])
        assert as_json.exit_code == 2
        assert json.loads(as_json.stdout) == {"ok": False, "bundle": str(bundle), "error": f"--key {key}: not a PEM public key"}


def test_verify_checks_an_artifact_folder_given_on_the_command_line(cli: CliRunner, store_copy: RecordedStore, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    assert cli.invoke(app, ["export", str(store_copy.tournament_id), str(bundle)]).exit_code == 0
    [(run_id, artifact)] = store_copy.query("SELECT run_id, artifact_path FROM run_attempt WHERE artifact_path IS NOT NULL LIMIT 1")
    assert cli.invoke(app, ["verify", str(bundle), "--artifact", f"{run_id}={artifact}"]).exit_code == 0
    copy = Path(shutil.copytree(artifact, tmp_path / "artifact"))
    (copy / "config.json").write_text("{}")
    changed = cli.invoke(app, ["verify", str(bundle), "--artifact", f"{run_id}={copy}"])
    assert changed.exit_code == 1 and "config.json changed" in changed.output
    malformed = cli.invoke(app, ["verify", str(bundle), "--artifact", "not-a-run"])
    assert malformed.exit_code == 2 and "RUN_ID=PATH" in malformed.output


def test_verify_of_a_bundle_json_that_is_not_json_says_so_in_its_header(cli: CliRunner, store_copy: RecordedStore,
                                                                        tmp_path: Path) -> None:  # fmt: skip
    """The QA saw `tournament  None None (None)` for a bundle.json that does not read as JSON."""
    bundle = tmp_path / "bundle"
    assert cli.invoke(app, ["export", str(store_copy.tournament_id), str(bundle)]).exit_code == 0
    (bundle / "bundle.json").write_text("{not json")
    text = cli.invoke(app, ["verify", str(bundle)])
    assert text.exit_code == 1
    header = " ".join(" ".join(text.output.split("┏")[0].split("\nkey ")[0].split("\ntournament ")[1:]).split())
    assert header == ("unknown: bundle.json is unreadable: does not read as JSON (Expecting property name "
                      "enclosed in double quotes: line 1 column 2 (char 1))")
    assert "None None" not in text.output
    (bundle / "bundle.json").write_text("[]")
    header = cli.invoke(app, ["verify", str(bundle)]).output.split("\ntournament ")[1].split("\n")[0]
    assert header.strip() == "unknown: bundle.json is unreadable: is not a JSON object"
    (bundle / "bundle.json").write_text("{}")
    header = cli.invoke(app, ["verify", str(bundle)]).output.split("\ntournament ")[1].split("\n")[0]
    assert header.strip() == "unknown: bundle.json names no tournament"


def test_verify_without_bundle_json_fails_once_and_checks_nothing_against_it(cli: CliRunner, store_copy: RecordedStore,
                                                                              tmp_path: Path) -> None:  # fmt: skip
    """The QA saw 24 failures in 5 checks, `tree_size is None` and `the bundle about tournament None`
    among them, for the one missing file."""
    bundle = tmp_path / "bundle"
    assert cli.invoke(app, ["export", str(store_copy.tournament_id), str(bundle)]).exit_code == 0
    (bundle / "bundle.json").unlink()
    text = cli.invoke(app, ["verify", str(bundle)], env={"COLUMNS": "200"})
    assert text.exit_code == 1 and "None" not in text.output
    assert "NOT VERIFIED: 1 failure in 1 check" in text.output and "bundle.json: missing from the bundle" in text.output
    report = json.loads(cli.invoke(app, ["verify", str(bundle), "--json"]).stdout)
    assert [(c["name"], f["record"], f["message"]) for c in report["checks"] for f in c["failures"]] == [
        ("files", "bundle.json", "missing from the bundle")]
    unchecked = {c["name"]: [n["message"] for n in c["notes"]] for c in report["checks"] if c["notes"]}
    assert unchecked == {
        "key": ["its log_id against the key not checked: missing from the bundle"],
        "tree_heads": ["its tree_size against the latest head not checked: missing from the bundle"],
        "statements": ["its list of entries against entries.jsonl not checked: missing from the bundle"],
        "references": ["the tournament each record is about not checked: missing from the bundle"],
    }


def test_export_of_a_tournament_not_started_or_unknown_says_which_and_leaves_no_folder(cli: CliRunner, store_copy: RecordedStore,
                                                                                       tmp_path: Path) -> None:  # fmt: skip
    """It said "it does not exist, or it ran with records.enabled off" of a tournament only created, and
    left an empty folder behind (QA 12)."""
    from trainarena.store import create_tournament, open_store

    with open_store(store_copy.settings) as store, store.transaction() as session:
        created = create_tournament(session, name="week-2", kind="text", seed=9, entrants=["alpha", "bravo"]).id
    bundle = tmp_path / "made" / "bundle"
    refused = cli.invoke(app, ["export", str(created), str(bundle)])
    message = " ".join(refused.output.split())
    assert refused.exit_code == 1 and f"tournament {created} (week-2) has not started: nothing is recorded yet" in message, message
    assert not (tmp_path / "made").exists()  # the folders the export made are gone
    unknown = cli.invoke(app, ["export", "99", str(bundle), "--json"])
    assert unknown.exit_code == 1
    assert json.loads(unknown.output)["error"] == "no tournament has the name or id '99': neither the database nor the transparency log knows it"
    unnamed = cli.invoke(app, ["export", "week-9", str(bundle), "--json"])
    assert unnamed.exit_code == 1 and json.loads(unnamed.output) == {
        "ok": False, "tournament": "week-9",
        "error": "no tournament has the name or id 'week-9'; `trainarena tournament list` shows each one's name and id"}  # fmt: skip
    assert not (tmp_path / "made").exists()
    kept = tmp_path / "empty"
    kept.mkdir()
    assert cli.invoke(app, ["export", "99", str(kept)]).exit_code == 1
    assert kept.is_dir()  # a folder that was there before is not the export's to remove


def test_export_takes_the_tournaments_name_or_its_id(cli: CliRunner, store_copy: RecordedStore, tmp_path: Path) -> None:
    by_name = cli.invoke(app, ["export", "week-1", str(tmp_path / "by-name"), "--json"])
    by_id = cli.invoke(app, ["export", str(store_copy.tournament_id), str(tmp_path / "by-id"), "--json"])
    assert by_name.exit_code == by_id.exit_code == 0, by_name.output + by_id.output
    assert json.loads(by_name.output)["tournament"] == json.loads(by_id.output)["tournament"]
    assert json.loads(by_name.output)["tournament"]["id"] == store_copy.tournament_id
    assert (tmp_path / "by-name" / "entries.jsonl").read_text() == (tmp_path / "by-id" / "entries.jsonl").read_text()


def test_export_by_an_id_the_database_does_not_hold_reads_the_log(cli: CliRunner, store_copy: RecordedStore, tmp_path: Path) -> None:
    """A tournament the transparency log knows and the database does not (its entries moved to an id
    no row holds, as when its row is gone) is still exported by its id, as before names were taken."""
    from sqlalchemy import update

    from trainarena.store import open_store
    from trainarena.store.log_tables import LogEntry

    with open_store(store_copy.settings) as store, store.transaction() as session:
        session.execute(update(LogEntry).where(LogEntry.tournament_id == store_copy.tournament_id).values(tournament_id=77))
    exported = cli.invoke(app, ["export", "77", str(tmp_path / "bundle"), "--json"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["tournament"]["name"] == "week-1"  # as its statements name it
