"""Secret split seeds of stored tasks.

What it protects against: a competitor who knows a public dataset and the public split rules
recomputing which rows will be hidden (with the fixed ``DataRules.split_seed`` anyone can), then
training on exactly those rows. A stored task's split seed is ``HMAC-SHA256(secret, split key)``: the
split key (``TaskDefinition.split_key``) is public and stored with the task, the operator's secret is
not, so without the secret the seed cannot be derived, and two operators split the same data apart.

Likewise an image task's evaluation noise: with the public ``ImageRules.eval_master_seed`` every image
of every task is noised with the same tensors, which a LoRA could learn. A stored task's noise master
seed is ``HMAC-SHA256(secret, "trainarena-noise:" + split key)``: per task, secret until revealed with
the split seed, and independent of the split seed (knowing one does not give the other).

What it does not protect against: a leaked secret (or key file), or an operator who publishes the
hidden split. Ad-hoc task files (``trainarena run``, ``task check``, the demo) have no split key and
keep the public seeds (split and noise): their split is public by design.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from trainarena.settings import Settings
from trainarena.tasks.base import TaskDefinition

SECRET_BYTES = 32
NOISE_LABEL = "trainarena-noise:"  # keeps a task's noise seed apart from its split seed (same secret, same key)
# noise_source's answers.
PUBLIC_NOISE = "public"
SECRET_NOISE = "secret"


def operator_secret(settings: Settings) -> bytes:
    """The split secret: ``pools.split_secret`` when set, else the key file, created on first use
    with random bytes, readable by its owner only (mode 0600)."""
    if settings.pools.split_secret is not None:
        return settings.pools.split_secret.get_secret_value().encode()
    path = settings.split_secret_path
    if not path.exists():
        _create_key_file(path)
    key = path.read_bytes()
    if len(key) < 16:
        raise ValueError(f"{path}: the split secret is {len(key)} bytes, too short; delete the file to make a new one "
                         "(only before any task is stored: stored tasks' splits follow from it)")
    return key


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: two processes creating it at once keep the first one's secret
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "wb") as out:
        out.write(secrets.token_hex(SECRET_BYTES).encode())


def _hmac_seed(secret: bytes, message: str) -> int:
    """63 bits of ``HMAC-SHA256(secret, message)``."""
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFFFFFFFFFFFFFF


def split_seed(secret: bytes, split_key: str) -> int:
    """The split seed of a task with this split key under this secret."""
    return _hmac_seed(secret, split_key)


def noise_seed(secret: bytes, split_key: str) -> int:
    """The image evaluator's noise master seed of a task with this split key under this secret (an HMAC
    under its own label, so it says nothing of the split seed)."""
    return _hmac_seed(secret, f"{NOISE_LABEL}{split_key}")


def _secret_noise_key(task: TaskDefinition) -> str | None:
    """The split key an image task's secret noise seed follows from; None when its noise is public."""
    return None if task.public_noise else task.split_key


def noise_source(task: TaskDefinition) -> str:
    """Where an image task's noise master seed comes from: ``secret``, its own noise seed (a stored task,
    with a split key); :data:`PUBLIC_NOISE`, ``ImageRules.eval_master_seed`` (an ad-hoc task, or a stored
    one whose record was scored so: ``TaskDefinition.public_noise``). Recorded in an image evaluation's
    details as ``noise_seed``."""
    return PUBLIC_NOISE if _secret_noise_key(task) is None else SECRET_NOISE


def noise_master_seed(task: TaskDefinition, settings: Settings) -> int:
    """The master seed an image task's evaluation noise comes from (:func:`noise_source`)."""
    key = _secret_noise_key(task)
    if key is None:
        return settings.image.eval_master_seed
    return noise_seed(operator_secret(settings), key)


def split_settings(task: TaskDefinition, settings: Settings) -> Settings:
    """The settings a task is prepared with: its secret split seed in ``data.split_seed`` when it is a
    stored task (has a split key), the settings unchanged for an ad-hoc one."""
    if task.split_key is None:
        return settings
    seed = split_seed(operator_secret(settings), task.split_key)
    return settings.model_copy(update={"data": settings.data.model_copy(update={"split_seed": seed})})
