"""The offline assets named from a task file: ``base_model = "trainarena:tiny_llama"``,
``source = "trainarena:arithmetic"``.

The assets are built from code into ``settings.assets_dir``, in a folder whose name carries a hash of
the builder (``assets-v2-<hash>-seed0``), so a task file cannot name them by a path. A value starting
with ``trainarena:`` names one of them instead; loading the task file turns it into the absolute path
of the built asset, building the assets first when they are missing (the text assets in about ten
seconds, the image ones in about a minute). Only ``base_model`` and ``dataset.source`` take such names;
every other value means what it always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ASSET_PREFIX = "trainarena:"
MODEL, DATASET = "model", "dataset"
TEXT, IMAGE = "text", "image"


class BuiltinAssetError(ValueError):
    """A ``trainarena:`` name that names no built-in asset of the kind asked for."""


@dataclass(frozen=True)
class BuiltinAsset:
    name: str  # as written after the prefix
    role: str  # MODEL | DATASET
    kind: str  # TEXT | IMAGE: the task types it serves (every text type, or image)
    task_type: str | None = None  # a dataset's own task type (its columns fit that type's spec)


def builtin_assets() -> tuple[BuiltinAsset, ...]:
    """Every built-in asset, read from the builders' own lists (nothing is built)."""
    from trainarena.assets import build, synthetic, synthetic_types
    from trainarena.assets.image import build as image_build
    from trainarena.assets.image import synthetic as image_synthetic

    return (
        BuiltinAsset(build.TINY_LLAMA, MODEL, TEXT),
        *(BuiltinAsset(folder, MODEL, IMAGE) for folder in image_build.PIPELINES.values()),
        *(BuiltinAsset(d.name, DATASET, TEXT, "instruct") for d in synthetic.DATASETS),
        *(BuiltinAsset(d.name, DATASET, TEXT, d.task_type) for d in synthetic_types.TYPED_DATASETS),
        *(BuiltinAsset(d.name, DATASET, IMAGE, "image") for d in image_synthetic.DATASETS),
    )


def is_builtin(value: object) -> bool:
    return isinstance(value, str) and value.startswith(ASSET_PREFIX)


def find_builtin(value: str, *, role: str, kind: str) -> BuiltinAsset:
    """The asset a ``trainarena:NAME`` value names, checked to be a ``role`` for ``kind`` tasks;
    BuiltinAssetError naming the ones that would fit otherwise."""
    fitting = [asset for asset in builtin_assets() if asset.role == role and asset.kind == kind]
    found = next((asset for asset in builtin_assets() if asset.name == value.removeprefix(ASSET_PREFIX)), None)
    if found is not None and found in fitting:
        return found
    known = ", ".join(ASSET_PREFIX + asset.name for asset in fitting)
    if found is None:
        problem = "is not a built-in asset"
    else:
        problem = f"is a built-in {found.kind} {found.role}, not a {kind} {role}"
    raise BuiltinAssetError(f"{value!r} {problem}; built-in {role}s for {kind} tasks: {known}")


def builtin_path(asset: BuiltinAsset, assets_dir: Path) -> Path:
    """The absolute path of ``asset`` under ``assets_dir``, building its kind of assets if missing."""
    if asset.kind == IMAGE:
        from trainarena.assets.image import ensure_image_assets

        images = ensure_image_assets(assets_dir)
        return images.root / asset.name if asset.role == MODEL else images.datasets[asset.name]
    from trainarena.assets import ensure_assets

    texts = ensure_assets(assets_dir)
    return texts.tiny_llama if asset.role == MODEL else next(d.path for d in texts.task_datasets if d.name == asset.name)


def model_name_for_script(base_model: str, assets_dir: Path, in_sandbox: str) -> str:
    """What a run's task.json names its base model: a Hub id as it is; a built-in model (a folder of
    ``assets_dir`` named as one) as ``trainarena:NAME``; any other local folder as ``in_sandbox``, where the
    script finds it. A path of the platform's machine never reaches the script."""
    local = Path(base_model).expanduser()
    if not local.is_absolute() and not local.is_dir():
        return base_model  # a Hub id
    models = {asset.name for asset in builtin_assets() if asset.role == MODEL}
    resolved = local.resolve()
    if resolved.is_relative_to(assets_dir.resolve()) and resolved.name in models:
        return ASSET_PREFIX + resolved.name
    return in_sandbox
