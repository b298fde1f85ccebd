"""`trainarena keys create | list | revoke`, and that a key works (and stops working) against the API."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from trainarena.api import create_app
from trainarena.cli import app
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.api_keys import hash_key
from trainarena.store.models import ApiKey


def _invoke(runner: CliRunner, args: list[str], exit_code: int = 0) -> str:
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == exit_code, result.output
    return result.stdout


def test_a_created_key_is_shown_once_and_stored_only_as_its_hash(runner: CliRunner) -> None:
    created = json.loads(_invoke(runner, ["keys", "create", "--role", "customer", "acme", "--json"]))
    secret = created["key"]
    assert created["role"] == "customer" and secret.startswith("ta_") and len(secret) > 40
    with open_store(Settings()) as store, store.session() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.name == "acme"))
        assert row.key_hash == hash_key(secret)
        stored = [str(value) for value in (row.key_hash, row.key_prefix, row.name)]
    assert all(secret not in value for value in stored)
    listed = _invoke(runner, ["keys", "list"])
    assert "acme" in listed and "customer" in listed and secret not in listed and secret[:10] in listed


def test_text_output_says_the_key_is_shown_once(runner: CliRunner) -> None:
    out = _invoke(runner, ["keys", "create", "--role", "operator", "ops"])
    assert "ta_" in out and "only once" in out


def test_bad_role_and_duplicate_name_are_clear_errors(runner: CliRunner) -> None:
    bad = json.loads(_invoke(runner, ["keys", "create", "--role", "admin", "x", "--json"], exit_code=1))
    assert "operator, competitor, customer" in bad["error"]
    _invoke(runner, ["keys", "create", "--role", "competitor", "alice"])
    again = json.loads(_invoke(runner, ["keys", "create", "--role", "competitor", "alice", "--json"], exit_code=1))
    assert "exists already" in again["error"] and again["name"] == "alice"
    _invoke(runner, ["keys", "revoke", "alice"])  # revoking does not free the name: its records keep naming it
    revoked = json.loads(_invoke(runner, ["keys", "create", "--role", "competitor", "alice", "--json"], exit_code=1))
    assert "a revoked key keeps its name" in revoked["error"] and "alice-2" in revoked["error"]
    missing = json.loads(_invoke(runner, ["keys", "revoke", "nobody", "--json"], exit_code=1))
    assert "no API key named 'nobody'" in missing["error"]


def test_a_revoked_key_is_refused_by_the_api(runner: CliRunner) -> None:
    secret = json.loads(_invoke(runner, ["keys", "create", "--role", "customer", "acme", "--json"]))["key"]
    settings = Settings()
    with open_store(settings) as store, TestClient(create_app(settings, store=store)) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        me = client.get("/v1/me", headers=headers).json()
        assert (me["name"], me["role"]) == ("acme", "customer")
        _invoke(runner, ["keys", "revoke", "acme"])
        refused = client.get("/v1/me", headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthenticated"
    listed = json.loads(_invoke(runner, ["keys", "list", "--json"]))["keys"]
    assert listed[0]["revoked_at"] is not None and listed[0]["last_used_at"] is not None


def test_key_names_are_checked_as_competitor_names_are(runner: CliRunner) -> None:
    for bad in ("", "   ", "two\nlines", "has space", "x" * 65):
        refused = json.loads(_invoke(runner, ["keys", "create", "--role", "customer", bad, "--json"], exit_code=1))
        assert refused["ok"] is False and "letters, digits" in refused["error"], bad
    with open_store(Settings()) as store, store.session() as session:
        assert session.scalars(select(ApiKey.name)).all() == []
    assert json.loads(_invoke(runner, ["keys", "create", "--role", "customer", "acme.eu-2", "--json"]))["name"] == "acme.eu-2"


def test_keys_list_at_80_columns_shows_whole_names_the_revoke_command_needs(runner: CliRunner) -> None:
    names = ["acme-research-lab-production", "acme-research-lab-staging"]
    for name in names:
        _invoke(runner, ["keys", "create", "--role", "customer", name, "--json"])
    listed = runner.invoke(app, ["keys", "list"], env={"COLUMNS": "80"})
    assert listed.exit_code == 0, listed.output
    for name in names:
        assert name in listed.output  # `keys revoke NAME` takes exactly this handle


def test_keys_list_at_80_columns_keeps_the_three_times_to_the_minute(runner: CliRunner) -> None:
    """The QA saw every time cut to the day (`2026-12-02…`) once a key was used and another revoked,
    so when a key was last used could not be read."""
    secret = json.loads(_invoke(runner, ["keys", "create", "--role", "customer", "acme", "--json"]))["key"]
    _invoke(runner, ["keys", "create", "--role", "operator", "ops-team"])
    _invoke(runner, ["keys", "revoke", "ops-team"])
    with open_store(Settings()) as store, store.transaction() as session:
        for row in session.scalars(select(ApiKey)):
            row.last_used_at = row.created_at
    keys = json.loads(_invoke(runner, ["keys", "list", "--json"]))["keys"]
    listed = _invoke(runner, ["keys", "list"])
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in listed.splitlines() if line.startswith("│")]
    assert all(len(line) <= 80 for line in listed.splitlines())
    year, minute = keys[1]["revoked_at"][:4], keys[1]["revoked_at"][5:16].replace("T", " ")
    assert f"API keys (times UTC, {year})" in listed  # the year, said once for every time
    assert rows[0][:2] == ["acme", "customer"] and rows[0][2] == f"{secret[:10]}…"
    assert rows[0][3:] == [keys[0]["created_at"][5:16].replace("T", " "), keys[0]["last_used_at"][5:16].replace("T", " "), ""]
    assert rows[1][5] == minute and "…" not in "".join(rows[1][3:])


def test_revoking_a_revoked_key_says_when_it_was_revoked(runner: CliRunner) -> None:
    """The QA saw `revoked op1` twice, exit 0, while revoked_at kept the first time: the second line was false."""
    _invoke(runner, ["keys", "create", "--role", "operator", "op1"])
    assert _invoke(runner, ["keys", "revoke", "op1"]) == "revoked op1\n"
    first = json.loads(_invoke(runner, ["keys", "list", "--json"]))["keys"][0]["revoked_at"]
    again = _invoke(runner, ["keys", "revoke", "op1"])  # idempotent: exit 0
    assert again == f"op1 was already revoked at {first[:16].replace('T', ' ')} UTC\n"
    record = json.loads(_invoke(runner, ["keys", "revoke", "op1", "--json"]))
    assert record["already_revoked"] is True and record["revoked_at"] == first
    _invoke(runner, ["keys", "create", "--role", "operator", "op2"])
    assert json.loads(_invoke(runner, ["keys", "revoke", "op2", "--json"]))["already_revoked"] is False
