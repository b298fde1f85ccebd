"""`trainarena weights publish | show | export`: the weight vectors the platform publishes from its finished
tournaments (docs/rules.md, 'Published weights'), and their exports for a Bittensor validator."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from trainarena.cli.output import Col, OneLineTable, fail, id_option, labelled, make_output_folder, parse_utc, print_fields
from trainarena.records.recorder import publish_recorded
from trainarena.reporting.weights import (
    ExportError,
    csv_text,
    read_uids,
    u16_export,
    u16_warnings,
    vector_record,
    weights_overview,
)
from trainarena.settings import Settings
from trainarena.store import StoreError, get_vector, latest_vector, open_store

app = typer.Typer(help="Publish, show and export the weight vectors of the finished tournaments.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

# Competitor and tournament names are whole (folded where they do not fit); a hotkey shows its start.
WEIGHT_COLUMNS = (Col("#", justify="right"), Col("competitor", handle=True), Col("hotkey", shrink_to=10),
                  Col("weight", justify="right"))  # fmt: skip
HISTORY_COLUMNS = (Col("id", justify="right"), Col("published"), Col("text", handle=True), Col("image", handle=True),
                   Col("ratio", justify="right"), Col("week", justify="right"), Col("paid", justify="right"))  # fmt: skip


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    U16 = "u16"



def _parse_time(value: str | None, as_json: bool) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        return parse_utc(value)
    except ValueError as error:
        raise fail(f"--at {error}", as_json) from None


@app.command("publish")
def publish_command(
    at: Annotated[str | None, typer.Option("--at", help="ISO time to publish at (UTC when no zone), not later than now; default now.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish a vector from the latest finished text and image tournaments (nothing new when unchanged)."""
    settings = Settings()
    when = _parse_time(at, as_json)
    try:
        with open_store(settings) as store, store.transaction() as session:
            vector, new = publish_recorded(session, settings, when)
            record = vector_record(vector)
    except StoreError as error:
        raise fail(str(error), as_json) from error
    if as_json:
        typer.echo(json.dumps({**record, "new": new}, indent=2))
        return
    said = ("published", "green") if new else ("unchanged", "yellow")
    Console(highlight=False).print(Text.assemble(said, f" weight vector {record['id']} ({_summary(record)})"))


def _week(record: dict[str, Any]) -> str:
    return "hybrid off" if record["week"] is None else f"hybrid week {record['week']}"


def _summary(record: dict[str, Any]) -> str:
    return f"ratio {record['ratio']:.2f}, {_week(record)}"


def _tournament_name(record: dict[str, Any], kind: str) -> str:
    tournament = record["tournaments"][kind]
    return "-" if tournament is None else f"{tournament['name']} ({tournament['id']})"


@app.command("show")
def show_command(as_json: JsonFlag = False) -> None:
    """Show the latest published vector and the history of every vector published."""
    settings = Settings()
    with open_store(settings) as store, store.transaction() as session:
        overview = weights_overview(session)
    if as_json:
        typer.echo(json.dumps(overview, indent=2))
        return
    record, history = overview["latest"], overview["history"]
    if record is None:
        typer.echo("no weights published yet; publish them with `trainarena weights publish`")
        return
    console = Console(highlight=False)
    print_fields(console, [
        ("vector", str(record["id"])),
        ("published", record["published_at"]),
        ("text", _tournament_name(record, "text")),
        ("image", _tournament_name(record, "image")),
        ("ratio", f"{record['ratio']:.4f} (tournament share, {_week(record)})"),
        ("fallback", f"{record['fallback']:.4f}"),
        ("undistributed", f"{record['undistributed']:.4f}"),
    ])  # fmt: skip
    table = OneLineTable(WEIGHT_COLUMNS, title="Weights")
    for position, row in enumerate(record["weights"], start=1):
        table.add_row([str(position), row["competitor"], row["hotkey"] or "-", f"{row['weight']:.4f}"])
    console.print(table)
    history_table = OneLineTable(HISTORY_COLUMNS, title="History")
    for row in history:
        text, image = (row["tournaments"][k] for k in ("text", "image"))
        history_table.add_row([str(row["id"]), row["published_at"][:16].replace("T", " "),
                               "-" if text is None else text["name"], "-" if image is None else image["name"],
                               f"{row['ratio']:.2f}", "-" if row["week"] is None else str(row["week"]), str(row["paid"])])  # fmt: skip
    console.print(history_table)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise fail(f"cannot read --uids {path}: {error.strerror}") from None


@app.command("export")
def export_command(
    export_format: Annotated[ExportFormat, typer.Option("--format", help="json or csv: competitor, hotkey, weight; "
                                                        "u16: the integer vector a Bittensor validator sets, by hotkey.")],
    output: Annotated[Path | None, typer.Option("--output", help="Write to this file instead of stdout.")] = None,
    vector_id: Annotated[int | None, id_option("--vector", help="Export this vector; default the latest.")] = None,
    uids_file: Annotated[Path | None, typer.Option(
        "--uids", help="u16: a JSON object of hotkey to uid (from the subnet's metagraph); adds the uids.")] = None,
) -> None:
    """Export a published vector. u16 leaves out competitors without a hotkey, with a warning."""
    if uids_file is not None and export_format is not ExportFormat.U16:
        raise fail("--uids applies to --format u16 only (json and csv name hotkeys, not uids)")
    settings = Settings()
    warnings: list[str] = []
    try:
        with open_store(settings) as store, store.transaction() as session:
            vector = latest_vector(session) if vector_id is None else get_vector(session, vector_id)
            if vector is None:
                raise fail("no weights published yet; publish them with `trainarena weights publish`")
            if export_format is ExportFormat.CSV:
                text = csv_text(vector)
            elif export_format is ExportFormat.JSON:
                text = json.dumps(vector_record(vector), indent=2) + "\n"
            else:
                uids = None if uids_file is None else read_uids(_read(uids_file), str(uids_file))
                exported = u16_export(vector, settings.weights, uids)
                text = json.dumps(exported.record, indent=2) + "\n"
                warnings = u16_warnings(exported.vector)
    except (StoreError, ExportError) as error:
        raise fail(str(error)) from error
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    for warning in warnings:
        errors.print(labelled("warning", "yellow", warning))
    if output is None:
        typer.echo(text, nl=False)
        return
    make_output_folder(output.parent)
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise fail(f"cannot write --output {output}: {error.strerror}") from None
    errors.print(f"wrote {export_format.value} weights of vector {vector.id} to {output}")
