"""`trainarena models list | show | export | verify | publish | delete`: the model registry (docs/api.md, "Models")."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from securesystemslib.signer import SSlibKey
from sqlalchemy.orm import Session

from trainarena.cli.output import (
    Col,
    OneLineTable,
    check_path,
    fail,
    make_output_folder,
    print_fields,
    print_wrapped,
    scored_columns,
)
from trainarena.records.signing import OperatorKeyError, SignatureError, public_key_from_pem
from trainarena.records.statements import Kind
from trainarena.registry import (
    ModelFilesMissing,
    ModelKept,
    PublishingError,
    delete_model,
    export_model,
    model_files,
    model_record,
    publish_model,
    visible_model,
    visible_models,
)
from trainarena.registry.download_check import (
    FAILED,
    NOT_CHECKED,
    DownloadCheck,
    SignedRecord,
    check_download,
    record_from_entry,
    stored_run_record,
    stored_tree_head,
)
from trainarena.registry.record_claims import record_claims
from trainarena.registry.verify_input import MalformedInput, checked_model, checked_tree_head, read_json_file, read_text_file
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.models import RegisteredModel
from trainarena.tasks import score_direction
from trainarena.wording import ScoreColumn, percent

app = typer.Typer(help="List, show, export, publish and delete the registered models.", no_args_is_help=True)

T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ModelId = Annotated[str, typer.Argument(help="The model's id (model-...), as `trainarena models list` shows it.")]
# Base model and Hub URL are in `models show`: seven columns would not fit 80 without cutting the ids.
COLUMNS = (Col("id", handle=True), Col("source"), Col("type"), Col("score"), Col("script", shrink_to=10))


def _record(session: Session, row: RegisteredModel) -> dict[str, Any]:
    deleted = None if row.deleted_at is None else row.deleted_at.isoformat()
    return {**model_record(session, row), "created_at": row.created_at.isoformat(), "deleted_at": deleted}


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
        rows = [_record(session, row) for row in visible_models(session, None).data]
    if as_json:
        typer.echo(json.dumps({"ok": True, "models": rows}))
        return
    scores = ScoreColumn(score_direction(row["task_type"]) for row in rows)
    table = OneLineTable(scored_columns(COLUMNS, "score", scores), title="Registered models")
    for row in rows:
        score = scores.cell(_score(row["score"]), score_direction(row["task_type"]))
        table.add_row([row["id"], row["source"], row["task_type"], score, row["script"] or "-"])
    Console(highlight=False).print(table if rows else "no registered models yet")


def _unknown(model_id: str, as_json: bool) -> typer.Exit:
    return fail(f"no model {model_id}; `trainarena models list` lists them", as_json, model=model_id)


def _require_row(session: Session, model_id: str, as_json: bool) -> RegisteredModel:
    row = visible_model(session, model_id, None)
    if row is None:
        raise _unknown(model_id, as_json)
    return row


def _require(model_id: str, as_json: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with open_store(Settings()) as store, store.session() as session:
        row = _require_row(session, model_id, as_json)
        return _record(session, row), [vars(f) for f in model_files(row)]


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
        *([("against base", record["base_comparison"])] if record["base_comparison"] else []),
        *([("same as base", record["same_as_base"])] if record["same_as_base"] else []),
        *([("weights", record["same_as_base_refuted"])] if record["same_as_base_refuted"] else []),
        ("dataset", f"sha256:{record['dataset_digest']}"), ("run", str(record["run_id"] or "-")),
        ("job", record["job_id"] or "-"), ("registered", record["created_at"][:16].replace("T", " ")),
        ("folder", record["path"]), ("digest", record["digest"]), ("artifact", record["artifact_digest"] or "-"),
        ("published", record["published_url"] or "-"), ("bytes", f"{record['bytes']:,}"),
        *([("deleted", _deleted(record))] if record["deleted_at"] else []),
    ])  # fmt: skip
    table = OneLineTable((Col("file", shrink_to=12), Col("bytes", justify="right"), Col("sha256", shrink_to=16)), title="Files")
    for file in files:
        table.add_row([file["path"], str(file["size"]), file["sha256"]])
    console.print(table)


def _deleted(record: dict[str, Any]) -> str:
    by = "on the server's command line" if record["deleted_by"] is None else f"by key {record['deleted_by']}"
    return f"{record['deleted_at'][:16].replace('T', ' ')} {by} (its files are removed)"


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


def _read_input(path: Path, option: str, read: Callable[[Path], T], as_json: bool) -> T:
    """What ``read`` makes of the file ``path`` that ``option`` names; a file it cannot make it of ends
    the command (exit 2) naming the option, the file and what is wrong in it."""
    check_path(path, option, folder=False, json_output=as_json)
    try:
        return read(path)
    except (MalformedInput, OperatorKeyError) as error:
        raise fail(f"{option} {path}: {error}", as_json, code=2) from None


def _model_json(path: Path) -> dict[str, Any]:
    value = read_json_file(path)
    try:
        return checked_model(value)
    except MalformedInput as error:
        raise MalformedInput(f"{error} (not a model as GET /v1/models/{{id}} answers it)") from None


@dataclass(frozen=True)
class _Signed:
    """What ``models verify`` is given of the signed records (each None when not given)."""

    record: SignedRecord | None = None
    evaluation: SignedRecord | None = None
    head: dict[str, Any] | None = None  # a signed tree head's envelope
    head_key: SSlibKey | None = None  # the key to check it with


def _stored_model(model_id: str, key_path: Path, as_json: bool) -> tuple[dict[str, Any], _Signed]:
    """A model of this machine's registry, with its run's signed run and evaluation statements and the
    log's latest signed tree head, which their inclusion proofs are made against."""
    with open_store(Settings()) as store, store.session() as session:
        row = _require_row(session, model_id, as_json)
        model = {**_record(session, row), "files": [vars(f) for f in model_files(row)]}
        if row.run_id is None:
            return model, _Signed()
        record = stored_run_record(session, key_path, row.run_id)
        if record is None:
            return model, _Signed()
        return model, _Signed(record, stored_run_record(session, key_path, row.run_id, Kind.EVALUATION),
                              *stored_tree_head(session, key_path))


def _given(model_json: Path, record: Path | None, evaluation: Path | None, tree_head: Path | None,
           key: SSlibKey | None, as_json: bool) -> tuple[dict[str, Any], _Signed]:
    """The model and the signed records saved from the API, each checked as it is read."""
    def entry(kind: Kind) -> Callable[[Path], SignedRecord]:
        return lambda path: record_from_entry(read_json_file(path), key, kind)

    return _read_input(model_json, "--model-json", _model_json, as_json), _Signed(
        None if record is None else _read_input(record, "--record", entry(Kind.RUN), as_json),
        None if evaluation is None else _read_input(evaluation, "--evaluation", entry(Kind.EVALUATION), as_json),
        None if tree_head is None else _read_input(tree_head, "--tree-head", lambda path: checked_tree_head(read_json_file(path)), as_json),
        key)  # fmt: skip


@app.command("verify")
def verify_command(
    folder: Annotated[Path, typer.Argument(help="The model's folder: the one a download's tar unpacks (named after the model), or an export.")],
    model_id: Annotated[str | None, typer.Option("--model", help="The model's id, read from this machine's registry, with its run's records and the log's latest tree head.")] = None,
    model_json: Annotated[Path | None, typer.Option("--model-json", help="The model as GET /v1/models/{id} answered it, saved to a file (no store needed).")] = None,
    record: Annotated[Path | None, typer.Option("--record", help="Its run's signed record as GET /v1/records/entries/{index} answered it, saved to a file (`?job_id=ID&kind=run` finds it).")] = None,
    evaluation: Annotated[Path | None, typer.Option("--evaluation", help="Its run's signed evaluation, saved as --record is (`?job_id=ID&kind=evaluation` finds it): the model's score is checked against it.")] = None,
    tree_head: Annotated[Path | None, typer.Option("--tree-head", help="The signed tree head the records' inclusion proofs are made against (GET /v1/records/tree-head?size=N, N their tree_size), saved to a file.")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="The operator's public key (GET /v1/records/public-key) to check the records' and the tree head's signatures with.")] = None,
    dataset: Annotated[Path | None, typer.Option("--dataset", help="The file you uploaded: its sha256 is checked against the one the run record signs.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a downloaded model folder: its digest against the model's (computed as a record's artifact digest is), every file's sha256, and the weights against the signed run record of the run that trained it; then, each on its own line, the dataset (--dataset against the record's uploaded file), the score (against the signed evaluation) and the records' inclusion in the signed log. Exit 1 naming each difference or failed check, 2 naming the file and the field of an input that is not what the API answers."""
    if (model_id is None) == (model_json is None):
        raise fail("name the model with --model ID (this machine's registry) or --model-json FILE (saved from GET /v1/models/{id})", as_json)
    check_path(folder, "FOLDER", folder=True, json_output=as_json)
    if dataset is not None:
        check_path(dataset, "--dataset", folder=False, json_output=as_json)
    public_key = None if key is None else _read_input(key, "--key", lambda path: public_key_from_pem(read_text_file(path)), as_json)
    try:
        if model_json is not None:
            model, signed = _given(model_json, record, evaluation, tree_head, public_key, as_json)
        else:
            model, signed = _stored_model(str(model_id), Settings().operator_key_path, as_json)
    except (SignatureError, OperatorKeyError) as error:
        raise fail(f"the record cannot be trusted: {error}", as_json) from None
    try:
        result = check_download(folder, model, signed.record)
    except OSError as error:
        raise fail(f"FOLDER {folder}: {error.filename or 'a file'} cannot be read ({error.strerror or error})", as_json) from None
    try:
        claims = record_claims(model, signed.record, signed.evaluation, signed.head, signed.head_key, dataset)
    except OSError as error:
        raise fail(f"--dataset {dataset}: cannot be read ({error.strerror or error})", as_json) from None
    result = replace(result, claims=claims)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        _print_check(result)
    if not result.ok:
        raise typer.Exit(1)


def _print_check(result: DownloadCheck) -> None:
    console = Console(highlight=False, soft_wrap=True)
    if result.record is None:
        trust = "not checked (no record: give --record, or --model on the operator's machine)"
    else:
        signer = "its signature not checked (no --key)" if result.record.signed_by is None else f"signed by key {result.record.signed_by[:16]}"
        trust = f"run {result.record.statement['predicate']['run']['id']}, {signer}"
    linked = ", ".join(result.linked) or "-"
    if result.linked_by_content:
        linked += " (found by content: the model was registered before the registry named its copies)"
    print_fields(console, [("folder digest", result.folder_digest), ("model digest", result.registered_digest),
                           ("signed record", trust), ("same as signed", linked),
                           *((claim.name, f"{claim.status}: {claim.detail}") for claim in result.claims)])  # fmt: skip
    for problem in result.problems:  # a name from the folder or the model's file: plain text (print_wrapped escapes it)
        print_wrapped(console, f"differs: {problem}", indent="  ")  # two digests make it longer than a line
    failed = [claim.name for claim in result.claims if claim.status == FAILED]
    unchecked = [claim.name for claim in result.claims if claim.status == NOT_CHECKED]
    if not result.ok:
        console.print(f"NOT verified: {len(result.problems)} difference(s)" + (f", {', '.join(failed)} failed" if failed else ""))
    elif result.record is None or result.record.signed_by is None:  # consistent with what was given, nothing more
        console.print("consistent, but no signature checked (give --record and --key)")
    elif unchecked:
        console.print(f"verified, but {', '.join(unchecked)} not checked")
    else:
        console.print("verified")


@app.command("publish")
def publish_command(model_id: ModelId, as_json: JsonFlag = False) -> None:
    """Upload a model to the Hugging Face Hub as ORGANISATION/trainarena-TYPE-ID (needs registry.hub_token and registry.hub_organisation; private unless registry.hub_private is off)."""
    settings = Settings()
    with open_store(settings) as store:
        with store.session() as session:
            _require_row(session, model_id, as_json)
        try:
            url = publish_model(settings.registry, store, model_id)
        except PublishingError as error:
            raise fail(str(error), as_json, model=model_id) from None
    typer.echo(json.dumps({"ok": True, "id": model_id, "published_url": url}) if as_json else f"published {model_id} to {url}")


@app.command("delete")
def delete_command(model_id: ModelId, as_json: JsonFlag = False) -> None:
    """Delete a model's files from the data directory and mark it deleted: its record stays, so the jobs, runs and signed records that name it stay true. A champion's model and one published to the Hub are never deleted. Deleting it again answers the same and removes what a deletion cut short left."""
    with open_store(Settings()) as store:
        try:
            if not delete_model(store, model_id, None, None):
                raise _unknown(model_id, as_json)
        except ModelKept as error:
            raise fail(str(error), as_json, model=model_id) from None
        with store.session() as session:
            record = _record(session, _require_row(session, model_id, as_json))
    if as_json:
        typer.echo(json.dumps({"ok": True, "id": model_id, "deleted_at": record["deleted_at"], "bytes": record["bytes"]}))
        return
    typer.echo(f"deleted {model_id}: its {record['bytes']:,} bytes of files are removed; its record stays (`trainarena models show {model_id}`)")
