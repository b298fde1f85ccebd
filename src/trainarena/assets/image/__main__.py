"""``python -m trainarena.assets.image [CACHE_DIR]``: build (or find) the image assets and say what they are."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    from trainarena.assets.image import ensure_image_assets
    from trainarena.settings import Settings

    cache_dir = Path(argv[0]) if argv else Settings().assets_dir
    started = time.monotonic()
    assets = ensure_image_assets(cache_dir)
    print(f"image assets: {assets.root} ({time.monotonic() - started:.1f} s this call)")
    print(f"tiny_sd: {assets.tiny_sd} (parameters: {json.dumps(assets.manifest['parameters'])})")
    for model_type, path in assets.pipelines.items():
        print(f"model_type {model_type}: {path}")
    print(f"sdxl/flux parameters: {json.dumps(assets.manifest['family_parameters'])}")
    for name, path in assets.datasets.items():
        print(f"dataset {name} ({assets.dataset_kinds[name]}): {path}")
    print("pretraining:", json.dumps(assets.manifest["pretraining"]))
    print("build timings (s):", json.dumps(assets.manifest["timings_seconds"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
