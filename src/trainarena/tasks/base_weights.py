"""Whether an artifact's weights equal its base model's: the check of a script's claim, in its outcome
file (``contract.OUTCOME_FILE``), that it saved the base model's weights unchanged. The script that
trains a customer's job is a competitor's code, so its word is checked before the platform repeats it.

A full model equals its base when its weight files (those the evaluator read) hold exactly the base
model's tensors: the same names, and for each the same shape and values, in the base's dtype or cast
to another floating dtype (a script that trains in bf16 saves the base it kept in bf16: the base model,
rounded as any bf16 copy of it is). An adapter (a PEFT
adapter, an image LoRA) leaves its base unchanged when every LoRA B (up) matrix is zero: the update it
adds, B @ A, is then zero; an adapter with any other kind of tensor (modules_to_save, DoRA magnitudes)
is not taken as unchanged. Tensors are read one at a time (safetensors ``safe_open``), so a large model
is never in memory whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

from trainarena.tasks.image.evaluation import lora_weights_file
from trainarena.tasks.text.scoring import ADAPTER_CONFIG, FULL_INDEX, ArtifactError, scored_files

# Names (substrings) of a LoRA's two matrices, as PEFT and diffusers (also kohya's layout) save them.
LORA_UP = ("lora_B.", "lora_embedding_B", "lora.up.", "lora_up.")
LORA_DOWN = ("lora_A.", "lora_embedding_A", "lora.down.", "lora_down.")
LORA_ALPHA = ".alpha"  # kohya's per-module scale: it scales B @ A, zero with B


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
            return _adapter_unchanged([artifact_dir / name for name in names if name != ADAPTER_CONFIG])
        base = base_folder()
        return None if base is None else _same_tensors(_weight_files(artifact_dir, names), _weight_files(base, scored_files(base)))
    except Exception:  # noqa: BLE001 - unreadable weights (safetensors, torch or OS errors): nothing is known
        return None


def _weight_files(folder: Path, names: list[str]) -> list[Path]:
    return [folder / name for name in names if name != FULL_INDEX]


def _adapter_unchanged(files: list[Path]) -> bool | None:
    with ExitStack() as stack:
        handles = [_open(stack, path) for path in files]
        names = [(handle, name) for handle in handles for name in handle.keys()]  # noqa: SIM118 - safe_open has no __iter__
        if not any(_is_up(name) for _, name in names):
            return None  # no LoRA update at all: not an adapter this check knows
        for handle, name in names:
            if _is_up(name):
                if handle.get_tensor(name).count_nonzero() != 0:
                    return False
            elif not (name.endswith(LORA_ALPHA) or any(part in name for part in LORA_DOWN)):
                return None  # modules_to_save, DoRA magnitudes: what they change is not known here
    return True


def _is_up(name: str) -> bool:
    return any(part in name for part in LORA_UP)


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
