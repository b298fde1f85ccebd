"""`trainarena keys init | public`: the operator's signing key for the records, beside the API keys."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from field_lines import read_fields
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.records.signing import load_key, open_envelope, public_key_from_pem, sign_payload
from trainarena.settings import Settings


def _invoke(runner: CliRunner, args: list[str], exit_code: int = 0):  # noqa: ANN202
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == exit_code, result.output
    return result


def test_init_creates_a_private_key_and_prints_its_public_half(runner: CliRunner) -> None:
    created = json.loads(_invoke(runner, ["keys", "init", "--json"]).stdout)
    path = Settings().operator_key_path
    assert created["ok"] and created["path"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_key(path)
    public = public_key_from_pem(created["public_key_pem"])
    assert created["keyid"] == key.keyid == public.keyid
    # What the printed public key checks is what the stored private key signs.
    envelope = sign_payload(key, "application/json", {"hello": 1})
    assert open_envelope(envelope, public, "application/json") == {"hello": 1}
    assert "PRIVATE" not in created["public_key_pem"]


def test_init_text_names_path_fingerprint_and_pem(runner: CliRunner) -> None:
    out = _invoke(runner, ["keys", "init"]).stdout
    key = load_key(Settings().operator_key_path)
    fields, after = read_fields(out, 80)  # a long path wraps within the width, whole
    assert fields == {"signing key": str(key.path), "fingerprint": key.keyid}
    assert after[0].startswith("Keep the private key secret") and all(len(line) <= 80 for line in after)
    assert key.public_pem() in out and "BEGIN PRIVATE KEY" not in out


def test_init_refuses_to_replace_a_key_unless_forced(runner: CliRunner) -> None:
    first = json.loads(_invoke(runner, ["keys", "init", "--json"]).stdout)
    path = Settings().operator_key_path
    before = path.read_bytes()
    refused = json.loads(_invoke(runner, ["keys", "init", "--json"], exit_code=1).stdout)
    assert not refused["ok"] and refused["path"] == str(path)
    assert "--force" in refused["error"] and "old public key" in refused["error"]
    assert first["keyid"][:16] in refused["error"] and "keys public --output" in refused["error"]
    assert path.read_bytes() == before
    text = _invoke(runner, ["keys", "init"], exit_code=1)
    assert "--force" in text.stderr
    forced = json.loads(_invoke(runner, ["keys", "init", "--force", "--json"]).stdout)
    assert forced["keyid"] != first["keyid"] and load_key(path).keyid == forced["keyid"]


def test_public_prints_and_writes_the_pem(runner: CliRunner, tmp_path: Path) -> None:
    created = json.loads(_invoke(runner, ["keys", "init", "--json"]).stdout)
    assert _invoke(runner, ["keys", "public"]).stdout == created["public_key_pem"]
    target = tmp_path / "out" / "operator.pub.pem"
    _invoke(runner, ["keys", "public", "--output", str(target)])
    assert target.read_text() == created["public_key_pem"]
    assert public_key_from_pem(target.read_text()).keyid == created["keyid"]


def test_public_without_a_key_says_how_to_make_one(runner: CliRunner) -> None:
    result = _invoke(runner, ["keys", "public"], exit_code=1)
    assert "trainarena keys init" in result.stderr
    assert not Settings().operator_key_path.exists()
