"""Rows of a Hugging Face dataset named by its id: the one reading of a text dataset that needs a network.

A dataset value shaped like a hub id is one only when no file or folder of that name is where the
task's relative names are read (tasks/__init__.py), so a failure here is also what a misspelt local
name looks like: the error gives both readings (:class:`HubDatasetError`). On a host that cannot
reach the Hub, the hub library retries each request with backoff for about half a minute, logging
every retry; instead the Hub is probed once, briefly, and an unreachable one fails at once
(``HF_HUB_OFFLINE=1`` reads a copy in the Hugging Face cache without the probe; behind a proxy, which
a direct connection would not pass, the library's own requests are left to tell). The library's
retry chatter is kept off the terminal either way. The probe and its message are shared with a base
model named by its hub id (pipeline.resolve_base_model).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from trainarena.tasks.base import DatasetError

# Long enough for a slow network's DNS and TCP handshake, short beside the hub library's retries.
PROBE_SECONDS = 3.0
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_CHATTY_LOGGERS = ("huggingface_hub", "datasets", "fsspec", "urllib3")
HUB_UNREACHABLE = "the Hub cannot be reached from this host (set HF_HUB_OFFLINE=1 to use a copy in the Hugging Face cache)"


class HubDatasetError(DatasetError):
    """A dataset value read as a hub id that loads nothing, naming both readings of it. Where its local
    reading looked only the caller knows (a task file's folder, the working directory for `task add`
    flags, the data dir for a task sent to the API): :meth:`looked_in` names that folder."""

    def __init__(self, source: str, reason: str, folder: Path | None = None) -> None:
        local = "no local file or folder of that name" if folder is None else f"no file or folder {folder / source}"
        super().__init__(f"{source}: {local}, and the Hugging Face dataset {source!r} could not be loaded{reason}")
        self.source, self.reason = source, reason

    def looked_in(self, folder: Path) -> HubDatasetError:
        return HubDatasetError(self.source, self.reason, folder)


def hub_cut_off() -> bool:
    """Whether the hub library would only retry and fail here: neither offline (it reads the cache then)
    nor behind a proxy (left to the library), and the Hub's endpoint does not answer the probe. Asked
    before loading a hub dataset or a base model named by its hub id, so both fail at once with
    :data:`HUB_UNREACHABLE`."""
    offline = any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in _OFFLINE_VARIABLES)
    proxied = any(os.environ.get(name) for name in PROXY_VARIABLES)
    return not offline and not proxied and not hub_reachable()


def read_hub_rows(source: str, split: str) -> list[dict[str, Any]]:
    """The rows of the hub dataset ``source`` (its ``split``); HubDatasetError when it cannot be loaded."""
    if hub_cut_off():
        raise HubDatasetError(source, f": {HUB_UNREACHABLE}")
    import datasets

    try:
        with _quiet(_CHATTY_LOGGERS):
            return datasets.load_dataset(source, split=split).to_list()
    except Exception as error:  # the hub raises many unrelated types; the message is what matters
        raise HubDatasetError(source, f" ({type(error).__name__}: {error})") from None


def hub_reachable(timeout: float = PROBE_SECONDS) -> bool:
    """Whether a TCP connection to the Hub's endpoint (``HF_ENDPOINT``) opens within ``timeout``."""
    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def _quiet(names: tuple[str, ...]) -> Iterator[None]:
    """Only errors from these loggers while the block runs (their retries and progress are not ours)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
