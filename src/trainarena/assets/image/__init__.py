"""Offline image assets built from code: a tiny Stable-Diffusion-shaped pipeline and synthetic person
and style datasets. Built only when an image tournament or test asks (``ensure_image_assets``), cached
apart from the text assets. ``python -m trainarena.assets.image [CACHE_DIR]`` builds them."""

from trainarena.assets.image.build import (
    CAPTIONS_FILE,
    IMAGE_ASSETS_VERSION,
    ImageAssets,
    ensure_image_assets,
    image_assets_stamp,
    write_image_folder,
)

__all__ = [
    "CAPTIONS_FILE",
    "IMAGE_ASSETS_VERSION",
    "ImageAssets",
    "ensure_image_assets",
    "image_assets_stamp",
    "write_image_folder",
]
