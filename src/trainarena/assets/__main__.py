"""``python -m trainarena.assets [CACHE_DIR]``: build (or find) the offline assets and say what they are.
The default cache is the one of ``Settings()`` (``$TRAINARENA_DATA_DIR/cache/assets``)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    from trainarena.assets import ensure_assets
    from trainarena.settings import Settings

    cache_dir = Path(argv[0]) if argv else Settings().assets_dir
    started = time.monotonic()
    assets = ensure_assets(cache_dir)
    print(f"assets: {assets.root} ({time.monotonic() - started:.1f} s this call)")
    print(f"tiny_llama: {assets.tiny_llama} ({assets.manifest['parameters']:,} parameters)")
    for name, path in assets.datasets.items():
        print(f"dataset {name}: {path} ({assets.manifest['datasets'][name]['rows']} rows)")
    print("pretraining:", json.dumps(assets.manifest["pretraining"]))
    print("build timings (s):", json.dumps(assets.manifest["timings_seconds"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
