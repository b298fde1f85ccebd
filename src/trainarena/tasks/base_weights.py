"""Whether an artifact's weights equal its base model's: the check of a script's claim, in its outcome
file (``contract.OUTCOME_FILE``), that it saved the base model's weights unchanged. The script that
trains a customer's job is a competitor's code, so its word is checked before the platform repeats it.

A full model equals its base when its weight files (those the evaluator read) hold exactly the base
model's tensors: the same names, and for each the same shape and values, in the base's dtype or cast
to another floating dtype (a script that trains in bf16 saves the base it kept in bf16: the base model,
rounded as any bf16 copy of it is).

An adapter (a PEFT adapter, an image LoRA) leaves its base unchanged when the update each LoRA pair
adds, B (up) @ A (down), is zero: when B or A is zero, else when their product is (computed only then,
a block of rows at a time: the product is the size of the weight it adds to). One pair whose product
is not zero changes the base. An adapter with any other kind of tensor (modules_to_save, DoRA
magnitudes), or a B that is not zero without its A, is not taken as unchanged. A PEFT adapter whose
``lora_alpha`` is 0 (and every ``alpha_pattern`` entry too) adds nothing whatever its matrices hold:
PEFT scales each update by alpha / r (alpha / sqrt(r) with rsLoRA), so every update is zero. So
does a kohya-layout module whose own ``.alpha`` tensor is 0 (diffusers scales its pair by alpha / rank).

Tensors are read one at a time (safetensors ``safe_open``), so a large model is never in memory whole.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from trainarena.execution.artifacts import read_config
from trainarena.tasks.image.evaluation import lora_weights_file
from trainarena.tasks.text.scoring import ADAPTER_CONFIG, FULL_INDEX, ArtifactError, scored_files

# Names (substrings) of a LoRA's two matrices, as PEFT and diffusers (also kohya's layout) save them:
# each up (B) marker with the down (A) marker its pair's other matrix has in the same place.
LORA_PAIRS = (("lora_B.", "lora_A."), ("lora_embedding_B", "lora_embedding_A"), ("lora.up.", "lora.down."), ("lora_up.", "lora_down."))
LORA_ALPHA = ".alpha"  # kohya's per-module scale: it scales B @ A, zero with it
# The most elements of B @ A computed at once (float64: 128 MiB), whatever the size of the weight.
PRODUCT_BLOCK = 1 << 24


def weights_equal_base(artifact_dir: Path, task_type: str, base_folder: Callable[[], Path | None]) -> bool | None:
    """Whether the weights of ``artifact_dir`` (an artifact that passed the checks) equal the base
    model's: True, False (they differ), or None when this check cannot tell (the base model's folder,
    which ``base_folder`` finds for a full model only, is not on this machine; an adapter with tensors
    this check does not know; weights that cannot be read). Never raises: the check only decides what
    the model card says, and "the weights differ" is said only of weights that do."""
    try:
        if task_type == "image":
            return _adapter_unchanged([lora_weights_file(artifact_dir)])
        names = scored_files(artifact_dir)
        if ADAPTER_CONFIG in names:
            weights = [artifact_dir / name for name in names if name != ADAPTER_CONFIG]
            return _adapter_unchanged(weights, scaled_to_zero=_alpha_is_zero(read_config(artifact_dir / ADAPTER_CONFIG)))
        base = base_folder()
        return None if base is None else _same_tensors(_weight_files(artifact_dir, names), _weight_files(base, scored_files(base)))
    except Exception:  # noqa: BLE001 - unreadable weights (safetensors, torch or OS errors): nothing is known
        return None


def _weight_files(folder: Path, names: list[str]) -> list[Path]:
    return [folder / name for name in names if name != FULL_INDEX]


def _alpha_is_zero(config: dict[str, Any]) -> bool:
    """Whether a PEFT adapter config scales every LoRA update by 0: ``lora_alpha`` 0, and no module given
    another alpha by ``alpha_pattern``."""
    pattern = config.get("alpha_pattern")
    alphas = [config.get("lora_alpha"), *(pattern.values() if isinstance(pattern, dict) else ())]
    return all(type(alpha) in (int, float) and alpha == 0 for alpha in alphas)


def _adapter_unchanged(files: list[Path], *, scaled_to_zero: bool = False) -> bool | None:
    """Whether the LoRA pairs in ``files`` add nothing to the base (the module's docstring); with
    ``scaled_to_zero`` (the adapter's scale is 0) no pair adds anything, and only tensors of another kind
    leave it unknown."""
    with ExitStack() as stack:
        pairs: dict[str, dict[bool, Callable[[], Any]]] = {}  # by the down matrix's name: up (True) and down
        alphas: dict[str, Callable[[], Any]] = {}  # kohya's per-module scales, by the module's name
        unknown = False
        for handle in [_open(stack, path) for path in files]:
            for name in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                role = _lora_role(name)
                if role is not None:
                    pairs.setdefault(role[0], {})[role[1]] = functools.partial(handle.get_tensor, name)
                elif name.endswith(LORA_ALPHA):
                    alphas[name.removesuffix(LORA_ALPHA)] = functools.partial(handle.get_tensor, name)
                else:
                    unknown = True  # modules_to_save, DoRA magnitudes: what they change is not known here
        if not any(True in pair for pair in pairs.values()):
            return None  # no LoRA update at all: not an adapter this check knows
        verdict: bool | None = True
        for down_name, pair in [] if scaled_to_zero else pairs.items():
            alpha = alphas.get(_module_name(down_name))
            zero = True if alpha is not None and alpha().count_nonzero() == 0 else _update_is_zero(pair.get(True), pair.get(False))
            if zero is False:
                return False  # this pair changes the base, whatever the rest does
            if zero is None:
                verdict = None
    return None if unknown else verdict


def _lora_role(name: str) -> tuple[str, bool] | None:
    """(the name of the pair's down matrix, whether ``name`` is the up one); None: no LoRA matrix."""
    for up, down in LORA_PAIRS:
        if up in name:
            return name.replace(up, down, 1), True
        if down in name:
            return name, False
    return None


def _module_name(down_name: str) -> str:
    """The module a LoRA pair belongs to, named as kohya names its ``.alpha``: the down matrix's name
    before its marker (``lora_unet_conv`` of ``lora_unet_conv.lora_down.weight``)."""
    for _, down in LORA_PAIRS:
        if down in down_name:
            return down_name.partition(down)[0].removesuffix(".")
    return down_name


def _update_is_zero(up: Callable[[], Any] | None, down: Callable[[], Any] | None) -> bool | None:
    """Whether B @ A is zero (B: ``up``, A: ``down``, each read when needed); None: a B without its A
    that is not zero, or no B (what such a pair adds is not known here)."""
    if up is None:
        return None
    b = up()
    if b.count_nonzero() == 0:
        return True
    if down is None:
        return None
    a = down()
    if a.count_nonzero() == 0:
        return True
    return _product_is_zero(b, a)


def _product_is_zero(b: Any, a: Any) -> bool:
    """Whether B @ A is zero, in float64 (which holds each product of two float32 or 16-bit values
    exactly), a block of B's rows at a time; a convolution's matrices flattened past their first axis."""
    b, a = b.reshape(b.shape[0], -1).double(), a.reshape(a.shape[0], -1).double()
    if b.shape[1] != a.shape[0]:
        raise ArtifactError(f"a LoRA pair of rank {b.shape[1]} (B) and {a.shape[0]} (A)")
    rows = max(1, PRODUCT_BLOCK // max(1, a.shape[1]))
    return all((block @ a).count_nonzero() == 0 for block in b.split(rows))


def _same_tensors(artifact: list[Path], base: list[Path]) -> bool:
    import torch

    # A kept base saved in another of these is the base model as any copy in that precision is; float8
    # or an integer type would pass a coarse rounding off as the base.
    cast_dtypes = (torch.float32, torch.float16, torch.bfloat16)

    with ExitStack() as stack:
        ours, theirs = dict(_tensor_index(stack, artifact)), dict(_tensor_index(stack, base))
        if ours.keys() != theirs.keys():
            return False
        for name, handle in ours.items():
            mine, original = handle.get_slice(name), theirs[name].get_slice(name)
            if mine.get_shape() != original.get_shape():
                return False
            saved, base_tensor = handle.get_tensor(name), theirs[name].get_tensor(name)
            if saved.dtype != base_tensor.dtype:
                if saved.dtype not in cast_dtypes or base_tensor.dtype not in cast_dtypes:
                    return False
                base_tensor = base_tensor.to(saved.dtype)
            if not torch.equal(saved, base_tensor):
                return False
    return True


def _tensor_index(stack: ExitStack, files: list[Path]) -> Iterator[tuple[str, object]]:
    """(tensor name, the open file holding it) for every tensor of ``files``; a name twice is refused."""
    seen: set[str] = set()
    for path in files:
        handle = _open(stack, path)
        for name in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
            if name in seen:
                raise ArtifactError(f"tensor {name} is in more than one weight file")
            seen.add(name)
            yield name, handle


def _open(stack: ExitStack, path: Path):  # noqa: ANN202 - safetensors' handle type is private
    from safetensors import safe_open

    return stack.enter_context(safe_open(str(path), framework="pt"))
