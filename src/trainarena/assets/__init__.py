"""Offline assets built from code: a byte-level BPE tokenizer, a tiny pre-trained LLaMA and synthetic
instruction datasets. ``python -m trainarena.assets [CACHE_DIR]`` builds them and prints what it built."""

from trainarena.assets.build import ASSETS_VERSION, Assets, TaskDataset, assets_stamp, ensure_assets

__all__ = ["ASSETS_VERSION", "Assets", "TaskDataset", "assets_stamp", "ensure_assets"]
