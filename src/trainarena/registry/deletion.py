"""Deleting a registered model (``DELETE /v1/models/{id}``, ``trainarena models delete``): its folder is
removed from the data directory and its row is kept, marked deleted (when, by which key), so that the
jobs, runs and signed records that name it stay true.

Never deleted, whoever asks (an operator too): a champion's model, reigning or past, which is the public
record of a crowning that anyone may download and check against the signed records; and a model
published to the Hugging Face Hub, whose copy there this cannot remove, so that "deleted" would not be
true (and the model's record is what the Hub repository's card points back to).

The order makes a crash safe: the mark is committed first, and the folder removed after. A process
killed in between leaves a model marked deleted whose files are still there: never one shown alive
without its files, and its files are not served (``archive.ModelDeleted``). Deleting it again (the
same answer as the first time) removes them, and so does the registry sweep (``sweep_registry``) at the
next start. The other order would leave a model alive in the store whose download fails.

The mark is made under the model's lock (``publishing.model_lock``): a deletion asked while the model
is being uploaded to the Hub waits for the upload, then refuses the model it published."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from trainarena.registry.models import ModelSource, visible_model
from trainarena.registry.publishing import model_lock
from trainarena.store import Store
from trainarena.store.models import RegisteredModel, utcnow


class ModelKept(Exception):
    """A model that is never deleted: a champion's, or one published to the Hub."""


def kept_reason(row: RegisteredModel) -> str | None:
    """Why ``row`` may not be deleted (see the module's docstring); None when it may."""
    if row.source == ModelSource.CHAMPION:
        return (f"model {row.id} is a champion's model: it stays as the public record of the crowning, which anyone "
                "may download and check against the signed records, so it is never deleted")  # fmt: skip
    if row.published_url is not None:
        return (f"model {row.id} is published to the Hugging Face Hub ({row.published_url}): deleting it here would not "
                "remove that copy, so it is never deleted")  # fmt: skip
    return None


def delete_model(store: Store, model_id: str, owner_key_id: int | None, by_key_id: int | None) -> bool:
    """Mark the model ``model_id`` deleted by ``by_key_id`` (None: the server's command line) and remove its
    folder, if ``owner_key_id`` may see it (None: any model; see ``visible_model``); False when it may
    not, or there is none. ModelKept for a model that is never deleted. A model deleted before keeps its
    mark (when, by whom), and what is left of its folder is removed: deleting again finishes a deletion
    a crash cut short."""
    with model_lock(store, model_id), store.transaction() as session:
        row = visible_model(session, model_id, owner_key_id)
        if row is None:
            return False
        reason = kept_reason(row)
        if reason is not None:
            raise ModelKept(reason)
        if row.deleted_at is None:
            row.deleted_at, row.deleted_by_key_id = utcnow(), by_key_id
        folder = Path(row.path)
    remove_folder(folder)  # once the mark is committed (the module's docstring)
    return True


def remove_folder(folder: Path) -> None:
    """Remove a deleted model's ``folder``; one that is gone already (a deletion that got this far, or
    one running at once) is no error."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(folder)
