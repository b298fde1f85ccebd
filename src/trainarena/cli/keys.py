"""`trainarena keys create | list | revoke`: the HTTP API's bearer keys (docs/api.md, "Keys and roles");
`trainarena keys init | public`: the operator's signing key for the records (docs/records.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trainarena.cli.output import Col, OneLineTable, check_path, fail, make_output_folder, print_fields, print_wrapped, printable
from trainarena.records.signing import OperatorKeyError, init_key, load_key
from trainarena.settings import Settings
from trainarena.store import StoreError, open_store
from trainarena.store.api_keys import create_key, list_keys, revoke_key
from trainarena.store.models import ApiKey, ApiRole

app = typer.Typer(help="Create, list and revoke the HTTP API's keys; create and export the operator's signing key.",
                  no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
KEY_COLUMNS = (Col("name", handle=True), Col("role"), Col("key starts", shrink_to=6), Col("created", shrink_to=10), Col("last used", shrink_to=5),
               Col("revoked", shrink_to=5))  # the name is the handle `keys revoke` takes: never cut


def _minute(iso: object, *, year: bool = True) -> str:
    """An ISO time of a key record as ``YYYY-MM-DD HH:MM`` (``MM-DD HH:MM`` without ``year``); empty for None."""
    return "" if iso is None else str(iso)[0 if year else 5:16].replace("T", " ")


def _same_year(rows: list[dict[str, object]]) -> str | None:
    """The year every time of ``rows`` falls in, when they all do in one (the table's title says it, and its
    times leave it out, so that the three of them stay whole at 80 columns); None otherwise."""
    years = {str(row[key])[:4] for row in rows for key in ("created_at", "last_used_at", "revoked_at") if row[key] is not None}
    return years.pop() if len(years) == 1 else None


def _record(row: ApiKey) -> dict[str, object]:
    return {
        "name": row.name, "role": row.role, "key_prefix": row.key_prefix, "created_at": row.created_at.isoformat(),
        "last_used_at": None if row.last_used_at is None else row.last_used_at.isoformat(),
        "revoked_at": None if row.revoked_at is None else row.revoked_at.isoformat(),
    }  # fmt: skip


@app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="A name for the key's holder (unique), e.g. acme-customer.")],
    role: Annotated[str, typer.Option("--role", help=f"What the key may do: {' | '.join(ApiRole.ALL)}.")],
    as_json: JsonFlag = False,
) -> None:
    """Create a key and print it once: only its hash is kept, so it cannot be shown again."""
    try:
        settings = Settings()
        with open_store(settings) as store, store.transaction() as session:
            new = create_key(session, name, role, name_max_length=settings.registration.name_max_length)
            record = {**_record(new.row), "key": new.secret}
    except StoreError as error:
        raise fail(str(error), as_json, name=name) from None
    if as_json:
        typer.echo(json.dumps({"ok": True, **record}))
        return
    console = Console(highlight=False, soft_wrap=True)
    print_fields(console, [("name", name), ("role", role), ("key", new.secret)])
    console.print("Keep the key now: it is shown only once. Send it as `Authorization: Bearer <key>`.")


@app.command("list")
def list_command(as_json: JsonFlag = False) -> None:
    """Every key: name, role, the first characters of the key, when last used, whether revoked."""
    with open_store(Settings()) as store, store.session() as session:
        rows = [_record(row) for row in list_keys(session)]
    if as_json:
        typer.echo(json.dumps({"ok": True, "keys": rows}))
        return
    year = _same_year(rows)
    table = OneLineTable(KEY_COLUMNS, title="API keys (times UTC)" if year is None else f"API keys (times UTC, {year})")
    for row in rows:
        times = [_minute(row[key], year=year is None) for key in ("created_at", "last_used_at", "revoked_at")]
        table.add_row([row["name"], row["role"], f"{row['key_prefix']}…", *times])
    Console(highlight=False).print(table if rows else "no API keys yet: trainarena keys create --role ROLE NAME")


@app.command("revoke")
def revoke_command(name: Annotated[str, typer.Argument(help="The key's name.")], as_json: JsonFlag = False) -> None:
    """Revoke a key: it is refused from the next request on (its files, jobs and models stay).

    A key already revoked stays as it is (exit 0): the command says when it was revoked."""
    try:
        with open_store(Settings()) as store, store.transaction() as session:
            row, revoked_now = revoke_key(session, name)
            record = _record(row)
    except StoreError as error:
        raise fail(str(error), as_json, name=name) from None
    if as_json:
        typer.echo(json.dumps({"ok": True, **record, "already_revoked": not revoked_now}))
    else:
        typer.echo(printable(f"revoked {name}" if revoked_now else f"{name} was already revoked at {_minute(record['revoked_at'])} UTC"))


@app.command("init")
def init_command(
    force: Annotated[bool, typer.Option("--force", help="Replace an existing signing key (records signed with it "
                                        "then verify only with its old public key).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """The operator's signing key for the records (not an API key): create it, print its public key."""
    path = Settings().operator_key_path
    try:
        key = init_key(path, force=force)
    except OperatorKeyError as error:
        hint = "; first keep its public key for them: trainarena keys public --output old-key.pem" if path.exists() else ""
        raise fail(f"{error}{hint}", as_json, path=str(path)) from None
    record = {"path": str(key.path), "keyid": key.keyid, "public_key_pem": key.public_pem()}
    if as_json:
        typer.echo(json.dumps({"ok": True, **record}))
        return
    console = Console(highlight=False, soft_wrap=True)
    print_fields(console, [("signing key", record["path"]), ("fingerprint", key.keyid)])
    print_wrapped(console, "Keep the private key secret and backed up. Verifiers need only the public key "
                           "(`trainarena keys public --output FILE`):")
    typer.echo(record["public_key_pem"], nl=False)


@app.command("public")
def public_command(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the PEM to this file instead of stdout.")] = None,
) -> None:
    """Print (or write) the operator's public signing key as PEM: what verifiers of the records need."""
    if output is not None:
        check_path(output, "--output", folder=False, must_exist=False)
    path = Settings().operator_key_path
    try:
        pem = load_key(path).public_pem()
    except OperatorKeyError as error:
        raise fail(str(error)) from None
    if output is None:
        typer.echo(pem, nl=False)
        return
    make_output_folder(output.parent)
    try:
        output.write_text(pem)
    except OSError as error:
        raise fail(f"--output {output}: cannot write it ({error.strerror})", code=2) from None
    typer.echo(f"wrote the public key to {output}", err=True)
