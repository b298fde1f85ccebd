"""`trainarena models list | show | export | publish`: the model registry (docs/api.md, "Models")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from trainarena.cli.output import Col, OneLineTable, fail, make_output_folder, print_fields
from trainarena.registry import (
    ModelFilesMissing,
    PublishingError,
    export_model,
    model_files,
    model_record,
    publish_model,
    visible_model,
    visible_models,
)
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.models import RegisteredModel
from trainarena.wording import percent

app = typer.Typer(help="List, show, export and publish the registered models.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ModelId = Annotated[str, typer.Argument(help="The model's id (model-...), as `trainarena models list` shows it.")]
# Base model and Hub URL are in `models show`: seven columns would not fit 80 without cutting the ids.
COLUMNS = (Col("id", handle=True), Col("source"), Col("type"), Col("score"), Col("script", shrink_to=10))


def _record(row: RegisteredModel) -> dict[str, Any]:
    return {**model_record(row), "created_at": row.created_at.isoformat()}


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _measured(measurement: dict[str, Any] | None) -> str:
    if not measurement:
        return "-"
    where = [f"{measurement['hidden_rows']} hidden rows"] if measurement.get("hidden_rows") is not None else []
    where += [f"validation share {percent(measurement['validation_share'])}"] if measurement.get("validation_share") else []
    return f"{measurement['metric']}, {measurement['direction']} is better" + (f", on {' and '.join(where)}" if where else "")


@app.command("list")
def list_command(as_json: JsonFlag = False) -> None:
    """Every registered model, newest first: jobs' models and champions'."""
    with open_store(Settings()) as store, store.session() as session:
        rows = [_record(row) for row in visible_models(session, None).data]
    if as_json:
        typer.echo(json.dumps({"ok": True, "models": rows}))
        return
    table = OneLineTable(COLUMNS, title="Registered models")
    for row in rows:
        table.add_row([row["id"], row["source"], row["task_type"], _score(row["score"]), row["script"] or "-"])
    Console(highlight=False).print(table if rows else "no registered models yet")


def _require_row(session: Session, model_id: str, as_json: bool) -> RegisteredModel:
    row = visible_model(session, model_id, None)
    if row is None:
        raise fail(f"no model {model_id}; `trainarena models list` lists them", as_json, model=model_id)
    return row


def _require(model_id: str, as_json: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with open_store(Settings()) as store, store.session() as session:
        row = _require_row(session, model_id, as_json)
        return _record(row), [vars(f) for f in model_files(row)]


@app.command("show")
def show_command(model_id: ModelId, as_json: JsonFlag = False) -> None:
    """A model's record, how its score was measured, and its files with sizes and sha256."""
    record, files = _require(model_id, as_json)
    if as_json:
        typer.echo(json.dumps({"ok": True, **record, "files": files}))
        return
    console = Console(highlight=False, soft_wrap=True)
    license_text = f"{record['license']}" + ("" if record["license_found"] else " (no license found in the script's repository)")
    print_fields(console, [
        ("id", record["id"]), ("source", record["source"]), ("task type", record["task_type"]),
        ("base model", record["base_model"]), ("library", record["library"] or "-"),
        ("script", record["script"] or "-"), ("license", license_text),
        ("score", _score(record["score"])), ("measured", _measured(record["measurement"])),
        *([("same as base", record["same_as_base"])] if record["same_as_base"] else []),
        *([("weights", record["same_as_base_refuted"])] if record["same_as_base_refuted"] else []),
        ("dataset", f"sha256:{record['dataset_digest']}"), ("run", str(record["run_id"] or "-")),
        ("job", record["job_id"] or "-"), ("registered", record["created_at"][:16].replace("T", " ")),
        ("folder", record["path"]), ("digest", record["digest"]), ("published", record["published_url"] or "-"),
    ])  # fmt: skip
    table = OneLineTable((Col("file", shrink_to=12), Col("bytes", justify="right"), Col("sha256", shrink_to=16)), title="Files")
    for file in files:
        table.add_row([file["path"], str(file["size"]), file["sha256"]])
    console.print(table)


@app.command("export")
def export_command(
    model_id: ModelId,
    destination: Annotated[Path, typer.Argument(help="A new or empty folder to write the model into.")],
    as_json: JsonFlag = False,
) -> None:
    """Copy a model's folder (weights, configs, tokenizer, model card) into DIR."""
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise fail(f"{destination} exists and is not an empty folder; name a new or empty one", as_json, model=model_id)
    with open_store(Settings()) as store, store.session() as session:
        row = _require_row(session, model_id, as_json)
        make_output_folder(destination, as_json, model=model_id)
        try:
            files = [vars(file) for file in export_model(row, destination)]
        except ModelFilesMissing as error:  # as GET /v1/models/{id}/download refuses it: never a partial copy
            raise fail(str(error), as_json, model=model_id) from None
    if as_json:
        typer.echo(json.dumps({"ok": True, "id": model_id, "destination": str(destination.resolve()), "files": files}))
        return
    typer.echo(f"wrote {len(files)} files of {model_id} to {destination}")


@app.command("publish")
def publish_command(model_id: ModelId, as_json: JsonFlag = False) -> None:
    """Upload a model to the Hugging Face Hub as ORGANISATION/trainarena-TYPE-ID (needs registry.hub_token and registry.hub_organisation; private unless registry.hub_private is off)."""
    settings = Settings()
    with open_store(settings) as store, store.transaction() as session:
        row = visible_model(session, model_id, None)
        if row is None:
            raise fail(f"no model {model_id}; `trainarena models list` lists them", as_json, model=model_id)
        try:
            url = publish_model(settings.registry, session, row)
        except PublishingError as error:
            raise fail(str(error), as_json, model=model_id) from None
    typer.echo(json.dumps({"ok": True, "id": model_id, "published_url": url}) if as_json else f"published {model_id} to {url}")
