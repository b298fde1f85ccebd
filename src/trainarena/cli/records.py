"""`trainarena export TOURNAMENT DIR` and `trainarena verify DIR`: a tournament's signed records as a
bundle, and the offline check of one (docs/records.md). ``verify`` opens no store and reads no settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from trainarena.cli.named_tournaments import tournament_argument, tournament_id_of
from trainarena.cli.output import (
    Col,
    OneLineTable,
    check_path,
    fail,
    make_output_folder,
    print_fields,
    print_wrapped,
)
from trainarena.records.bundle import MANIFEST, BundleError, export_bundle
from trainarena.records.checks import CheckResult
from trainarena.records.signing import OperatorKeyError
from trainarena.records.verify import BUNDLED_KEY, Report, verify_directory
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.wording import counted

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
# Failures printed per check (a broken log fails every proof alike); --json lists them all.
SHOWN_FAILURES = 6
CHECK_COLUMNS = (Col("what was checked", shrink_to=24), Col("items", justify="right"), Col("failed", justify="right"), Col("result"))


def records_hint(tournament_id: int) -> str:
    """The line that tells how to check a tournament's records (the demo ends with it)."""
    return f"records: `trainarena export {tournament_id} DIR` bundles them, `trainarena verify DIR` checks them offline"


def export_command(
    tournament: Annotated[str, tournament_argument("The tournament whose records to export")],
    directory: Annotated[Path, typer.Argument(help="A new (or empty) folder to write the bundle into.")],
    as_json: JsonFlag = False,
) -> None:
    """Write a tournament's signed records as a bundle anyone can verify offline with `trainarena verify`.

    The bundle holds every log entry about the tournament with its inclusion proof, the signed tree heads with their consistency proofs, the per-example scores, the operator's public key, and what the database says now (claims.json).
    """
    settings = Settings()
    with open_store(settings) as store:
        tournament_id = tournament_id_of(store, tournament, as_json, log_only=True)
        # The outermost folder this export makes, if any: a failed export removes it (and only it), so no
        # empty folder is left behind; a folder that was there before (the store's too) stays.
        made = next((folder for folder in (*reversed(directory.absolute().parents), directory.absolute()) if not folder.exists()), None)
        make_output_folder(directory, as_json, tournament_id=tournament_id)
        try:
            exported = export_bundle(store, settings, tournament_id, directory)
        except BaseException as error:
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)
            if isinstance(error, BundleError):
                raise fail(str(error), as_json, tournament_id=tournament_id) from None
            raise
    if as_json:
        typer.echo(json.dumps({"ok": True, **exported.to_json()}))
        return
    console = Console(highlight=False)
    for audit in exported.audits_left_out:  # not in the bundle, and the operator may believe they are
        print_wrapped(Console(stderr=True, highlight=False),
                      f"note: audit run {audit.run_id} (of run {audit.audit_of}) left out: {audit.reason}; a "
                      "bundle is checked against one key")
    name = exported.tournament.get("name")
    # Folded within the width (a long folder path runs on as one word otherwise), never cut: the
    # command is copied from here.
    print_wrapped(console, f"exported tournament {tournament_id} ({name}): {exported.entries} log entries, "
                           f"{exported.tree_heads} signed tree heads")
    print_wrapped(console, f"check it with: trainarena verify {directory}")


def _artifact_folders(values: list[str]) -> dict[int, Path]:
    folders = {}
    for value in values:
        run_id, separator, path = value.partition("=")
        if not separator or not run_id.strip().isdigit() or not path:
            raise typer.BadParameter(f"{value!r}: write RUN_ID=PATH, e.g. --artifact 12=runs/12/output", param_hint="--artifact")
        folders[int(run_id)] = Path(path)
    return folders


def verify_command(
    directory: Annotated[Path, typer.Argument(help="The bundle folder `trainarena export` wrote.")],
    key: Annotated[Path | None, typer.Option("--key", help="The operator's public key (PEM) you trust; without it the bundle's own key is used, and the report says so.")] = None,
    artifact: Annotated[list[str] | None, typer.Option("--artifact", help="RUN_ID=PATH: check an artifact folder against its run statement (repeatable).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a bundle offline: every signature, inclusion and consistency proof; the bracket, boss round and weights recomputed with the engine; the commitment and reveal of the hidden splits; the database's claims and any artifact folder given against the signed statements.

    Exits 0 when everything checks out, 1 when anything does not (each failure names its record).
    """
    check_path(directory, "bundle", folder=True, json_output=as_json, bundle=str(directory))
    if key is not None:
        check_path(key, "--key", folder=False, json_output=as_json, bundle=str(directory))
    try:
        report = verify_directory(directory, key, _artifact_folders(artifact or []))
    except OSError as error:  # the bundle's own files are reported, not raised: this is the key
        raise fail(f"--key {key}: cannot read it ({error.strerror})", as_json, code=2, bundle=str(directory)) from None
    except OperatorKeyError as error:  # no key to check with: no verdict about the bundle either
        raise fail(f"--key {key}: {error}", as_json, code=2, bundle=str(directory)) from None
    if as_json:
        typer.echo(json.dumps({"bundle": str(directory), **report.to_json()}, indent=2))
    else:
        print_report(Console(highlight=False), directory, report)
    if not report.ok:
        raise typer.Exit(code=1)


def _result(check: CheckResult) -> Text:
    if check.ok:
        return Text("ok" if check.checked else "nothing to check", style="green" if check.checked else "dim")
    return Text("FAILED", style="bold red")


def _tournament(report: Report) -> str:
    """The bundle's tournament, or why the bundle does not say which it is."""
    tournament = report.tournament
    if tournament:
        return f"{tournament.get('id')} {tournament.get('name')} ({tournament.get('kind')})"
    unread = [failure for check in report.checks if check.name == "files" for failure in check.failures]  # files not read
    problem = next((failure.message for failure in unread if failure.record == MANIFEST), None)
    return f"unknown: {MANIFEST} is unreadable: {problem}" if problem else f"unknown: {MANIFEST} names no tournament"


def print_report(console: Console, directory: Path, report: Report) -> None:
    """The report at any width: who and what, a table of the checks, then every failure with its record."""
    print_fields(console, [
        ("bundle", str(directory)),
        ("tournament", _tournament(report)),
        ("key", f"{(report.keyid or 'none')[:16]}, from {report.key_source}"),
    ])
    if report.key_source == BUNDLED_KEY:
        print_wrapped(console, "note: a bundle's own key proves nothing about who signed it; pass --key PEM with "
                      "the operator's public key you trust")
    table = OneLineTable(CHECK_COLUMNS)
    for check in report.checks:
        table.add_row([check.title, str(check.checked), str(len(check.failures)), _result(check)])
    console.print(table)
    for check in report.checks:
        if check.failures or check.notes:
            console.print(Text(f"{check.title}:", style="bold"))
        for found, prefix in ((check.failures, ""), (check.notes, "note: ")):
            shown = [f"{prefix}{item.record}: {item.message}" for item in found[:SHOWN_FAILURES]]
            if len(found) > SHOWN_FAILURES:
                shown.append(f"and {len(found) - SHOWN_FAILURES} more (--json lists every one)")
            for line in shown:
                print_wrapped(console, line, indent="  ")
    failures = report.failures
    if failures:
        failed = sum(1 for check in report.checks if not check.ok)
        console.print(Text(f"NOT VERIFIED: {counted(len(failures), 'failure')} in {counted(failed, 'check')}", style="bold red"))
    elif report.key_source == BUNDLED_KEY:
        # Consistent, but only under a key anyone could have put in the folder: not the operator's word yet.
        console.print(Text(f"verified against the bundle's own key {(report.keyid or '')[:16]}: every check passed; "
                           "compare that key with the operator's (--key) before trusting it", style="bold yellow"))
    else:
        console.print(Text("verified: every check passed", style="bold green"))
