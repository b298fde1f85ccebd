"""Synthetic captioned images drawn with Pillow from a seed: generic shapes for pre-training the tiny
pipeline, and the two kinds of image task datasets.

- ``person``: one recurring subject (fixed skin, hair, hat and eye colours, drawn from the dataset's
  seed) in varied poses, positions, sizes, shirt colours and backgrounds. Captions name the subject
  by a rare token ("a photo of zxq person ..."), as DreamBooth-style person datasets do.
- ``style``: one visual style (fixed palette, stripe direction and width, outline, background dots)
  applied to varied content (circles, squares, triangles, houses, trees, fish) at varied places.
- pre-training: flat shapes and striped shapes of random colours on random backgrounds; never the
  subjects or the styles, so that a LoRA fine-tune has something to learn.

Images are drawn at ``SUPERSAMPLE`` times the size and reduced with a box filter (anti-aliasing), so
that small shapes keep smooth edges at 32x32.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SUPERSAMPLE = 4
COLOURS = {
    "red": (200, 40, 40), "orange": (230, 130, 30), "yellow": (230, 210, 40), "green": (50, 160, 60),
    "teal": (30, 150, 150), "blue": (40, 70, 200), "purple": (130, 50, 170), "pink": (230, 120, 170),
    "brown": (120, 80, 40), "grey": (128, 128, 128), "white": (240, 240, 240), "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle", "diamond", "bar")
STYLE_OBJECTS = ("circle", "square", "triangle", "house", "tree", "fish")
POSES = ("arms down", "arms up", "waving", "arms out")


@dataclass(frozen=True)
class ImageDatasetPlan:
    """One synthetic dataset: its name, kind (person | style), rare token, seed and size."""

    name: str
    kind: str
    token: str
    seed: int
    images: int


DATASETS = (
    ImageDatasetPlan("person_zxq", "person", "zxq", 11, 40),
    ImageDatasetPlan("person_vlk", "person", "vlk", 12, 40),
    ImageDatasetPlan("style_qrt", "style", "qrt", 21, 40),
    ImageDatasetPlan("style_mjb", "style", "mjb", 22, 40),
)


def _canvas(size: int, background: tuple[int, int, int]):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size * SUPERSAMPLE, size * SUPERSAMPLE), background)
    return image, ImageDraw.Draw(image)


def _reduce(image, size: int):
    from PIL import Image

    return image.resize((size, size), Image.Resampling.BOX)


def _shape(draw, kind: str, box: tuple[float, float, float, float], fill, outline=None, width: int = 0) -> None:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if kind == "circle":
        draw.ellipse(box, fill=fill, outline=outline, width=width)
    elif kind == "square":
        draw.rectangle(box, fill=fill, outline=outline, width=width)
    elif kind == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=fill, outline=outline, width=width)
    elif kind == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill, outline=outline, width=width)
    elif kind == "bar":
        draw.rectangle((x0, cy - (y1 - y0) / 6, x1, cy + (y1 - y0) / 6), fill=fill, outline=outline, width=width)
    else:
        raise ValueError(f"unknown shape {kind!r}")


def _stripes(image, box, colour, spacing: int, direction: str) -> None:
    """Stripes clipped to ``box``'s ellipse-free rectangle (drawn on a mask so shapes keep their outline)."""
    from PIL import Image, ImageDraw

    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    layer = Image.new("RGB", image.size, colour)
    lines = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(lines)
    size = image.size[0]
    for offset in range(-size, 2 * size, spacing * 2):
        if direction == "diagonal":
            draw.polygon([(offset, 0), (offset + spacing, 0), (offset + spacing - size, size), (offset - size, size)], fill=255)
        else:
            draw.rectangle((0, offset, size, offset + spacing - 1), fill=255)
    from PIL import ImageChops

    image.paste(layer, (0, 0), ImageChops.multiply(mask, lines))


def generic_image(rng: random.Random, size: int):
    """A pre-training image and its caption: one flat or striped shape on a flat background."""
    names = list(COLOURS)
    background, colour = rng.sample(names, 2)
    shape = rng.choice(SHAPES)
    image, draw = _canvas(size, COLOURS[background])
    full = size * SUPERSAMPLE
    extent = rng.uniform(0.35, 0.8) * full
    x0, y0 = rng.uniform(0, full - extent), rng.uniform(0, full - extent)
    box = (x0, y0, x0 + extent, y0 + extent)
    _shape(draw, shape, box, COLOURS[colour])
    caption = f"a {colour} {shape} on a {background} background"
    if rng.random() < 0.3:
        stripe = rng.choice([n for n in names if n not in (background, colour)])
        _stripes(image, box, COLOURS[stripe], rng.choice((2, 3)) * SUPERSAMPLE, rng.choice(("diagonal", "horizontal")))
        caption = f"a {colour} {shape} with {stripe} stripes on a {background} background"
    return _reduce(image, size), caption


def _person_identity(seed: int) -> dict:
    rng = random.Random(seed)
    return {
        "skin": rng.choice([(235, 200, 170), (200, 150, 110), (140, 95, 60), (95, 65, 40)]),
        "hat": rng.choice(["red", "blue", "green", "purple", "orange"]),
        "hat_shape": rng.choice(["triangle", "square"]),
        "hair": rng.choice([(30, 20, 10), (200, 160, 60), (150, 60, 20)]),
        "scarf": rng.choice(["yellow", "teal", "pink"]),
    }


def person_image(identity: dict, token: str, rng: random.Random, size: int):
    """The dataset's subject in a random pose, size, place, shirt and background."""
    background = rng.choice(["white", "grey", "teal", "yellow", "pink", "green", "blue"])
    shirt = rng.choice([c for c in ("red", "blue", "green", "orange", "purple", "black", "white", "brown") if c != background])
    pose = rng.choice(POSES)
    image, draw = _canvas(size, COLOURS[background])
    unit = size * SUPERSAMPLE * rng.uniform(0.075, 0.11)  # body proportions scale with this
    cx = size * SUPERSAMPLE * rng.uniform(0.35, 0.65)
    top = size * SUPERSAMPLE * rng.uniform(0.08, 0.25)
    head = (cx - 1.5 * unit, top + unit, cx + 1.5 * unit, top + 4 * unit)
    hat = (cx - 1.7 * unit, top - 0.6 * unit, cx + 1.7 * unit, top + 1.6 * unit)
    body = (cx - 2 * unit, top + 4 * unit, cx + 2 * unit, top + 8.5 * unit)
    line = max(2, int(unit * 0.6))
    arm_ends = {
        "arms down": ((-3, 8.5), (3, 8.5)), "arms up": ((-3, 1.5), (3, 1.5)),
        "waving": ((-3, 8.5), (3.2, 2)), "arms out": ((-4.5, 5), (4.5, 5)),
    }[pose]
    for shoulder, (dx, dy) in zip((-1.8, 1.8), arm_ends, strict=True):
        draw.line((cx + shoulder * unit, top + 4.8 * unit, cx + dx * unit, top + dy * unit), fill=identity["skin"], width=line)
    draw.rectangle(body, fill=COLOURS[shirt])
    for dx in (-1, 1):
        draw.line((cx + dx * unit, body[3], cx + dx * 1.3 * unit, body[3] + 3 * unit), fill=COLOURS["black"], width=line)
    draw.ellipse(head, fill=identity["skin"])
    draw.rectangle((cx - 1.5 * unit, top + 1.3 * unit, cx + 1.5 * unit, top + 2 * unit), fill=identity["hair"])
    draw.rectangle((cx - 2 * unit, top + 4 * unit, cx + 2 * unit, top + 4.9 * unit), fill=COLOURS[identity["scarf"]])
    _shape(draw, identity["hat_shape"], hat, COLOURS[identity["hat"]])
    for dx in (-0.6, 0.6):
        draw.ellipse((cx + dx * unit - 0.3 * unit, top + 2.4 * unit, cx + dx * unit + 0.3 * unit, top + 3 * unit), fill=COLOURS["black"])
    caption = f"a photo of {token} person, {pose}, wearing a {shirt} shirt, on a {background} background"
    return _reduce(image, size), caption


def _style_identity(seed: int) -> dict:
    rng = random.Random(seed)
    names = list(COLOURS)
    palette = rng.sample(names, 4)
    return {
        "background": palette[0], "fills": palette[1:3], "stripe": palette[3],
        "direction": rng.choice(("diagonal", "horizontal")), "spacing": rng.choice((2, 3)),
        "outline": rng.choice(((20, 20, 20), (240, 240, 240))), "dots": rng.random() < 0.5,
    }


def style_image(style: dict, token: str, rng: random.Random, size: int):
    """A random object, place and size, always in the dataset's palette, stripes and outline."""
    obj = rng.choice(STYLE_OBJECTS)
    fill = COLOURS[rng.choice(style["fills"])]
    image, draw = _canvas(size, COLOURS[style["background"]])
    full = size * SUPERSAMPLE
    if style["dots"]:
        step = 4 * SUPERSAMPLE
        for x in range(step // 2, full, step):
            for y in range(step // 2, full, step):
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=COLOURS[style["stripe"]])
    extent = rng.uniform(0.45, 0.85) * full
    x0, y0 = rng.uniform(0, full - extent), rng.uniform(0, full - extent)
    box = (x0, y0, x0 + extent, y0 + extent)
    outline, width = style["outline"], 2 * SUPERSAMPLE
    if obj == "house":
        _shape(draw, "square", (x0, y0 + extent * 0.4, x0 + extent, y0 + extent), fill, outline, width)
        _shape(draw, "triangle", (x0, y0, x0 + extent, y0 + extent * 0.45), fill, outline, width)
    elif obj == "tree":
        draw.rectangle((x0 + extent * 0.4, y0 + extent * 0.6, x0 + extent * 0.6, y0 + extent), fill=outline)
        _shape(draw, "circle", (x0, y0, x0 + extent, y0 + extent * 0.7), fill, outline, width)
    elif obj == "fish":
        draw.ellipse((x0, y0 + extent * 0.25, x0 + extent * 0.75, y0 + extent * 0.75), fill=fill, outline=outline, width=width)
        draw.polygon([(x0 + extent * 0.7, y0 + extent / 2), (x0 + extent, y0 + extent * 0.25), (x0 + extent, y0 + extent * 0.75)], fill=fill, outline=outline)
    else:
        _shape(draw, obj, box, fill, outline, width)
    inner = (x0 + extent * 0.25, y0 + extent * 0.4, x0 + extent * 0.75, y0 + extent * 0.8)
    _stripes(image, inner, COLOURS[style["stripe"]], style["spacing"] * SUPERSAMPLE, style["direction"])
    caption = f"a {obj} in {token} style"
    return _reduce(image, size), caption


def generate_dataset(plan: ImageDatasetPlan, size: int, seed: int) -> list[tuple[object, str]]:
    """``plan.images`` (PIL image, caption) pairs; the subject or style follows from the plan's seed,
    the variations from the plan's seed and the build seed."""
    rng = random.Random(f"{plan.name}:{seed}")
    if plan.kind == "person":
        identity = _person_identity(plan.seed)
        return [person_image(identity, plan.token, rng, size) for _ in range(plan.images)]
    if plan.kind == "style":
        style = _style_identity(plan.seed)
        return [style_image(style, plan.token, rng, size) for _ in range(plan.images)]
    raise ValueError(f"unknown dataset kind {plan.kind!r}")


def generic_images(count: int, size: int, seed: int) -> list[tuple[object, str]]:
    rng = random.Random(f"generic:{seed}")
    return [generic_image(rng, size) for _ in range(count)]
