"""Drawing toy scenes with PIL.

Each kind has its own silhouette and its own fill pattern (stripes, dots, checks, ...)
drawn in a darker shade of the object's colour, so a kind can be told from any patch of
it and colours stay independent of kinds.  The background is shaded, darker to the left
and bluer to the top: Qwen2.5-VL's vision tower sees only relative positions, and the
shading is what tells a patch where in the image it is, as sky and ground do in a photo.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from scalecap_ray.toy.world import GRID, Scene, ToyObject

IMAGE_SIZE = 168  # 12 x 12 patches of 14 px: 6 x 6 image tokens after the 2 x 2 merge
CELL = IMAGE_SIZE // GRID
SIZE_PX = {"small": 30, "large": 46}
RGB = {"red": (215, 40, 40), "green": (40, 165, 60), "blue": (45, 85, 225),
       "yellow": (235, 205, 35), "purple": (145, 60, 185), "orange": (245, 135, 25)}
OUTLINE = (30, 30, 30)

Box = tuple[float, float, float, float]


def _background() -> Image.Image:
    im = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE))
    px = im.load()
    for y in range(IMAGE_SIZE):
        for x in range(IMAGE_SIZE):
            light = 150 + 80 * x / (IMAGE_SIZE - 1)
            top = 1 - y / (IMAGE_SIZE - 1)
            px[x, y] = (int(light - 20 * top), int(light - 5 * top), int(light + 20 * top))
    return im


_BACKGROUND = _background()


# Silhouettes: each draws white (255) shapes into a mask inside box (x0, y0, x1, y1).
def _table(d: ImageDraw.ImageDraw, x0, y0, x1, y1) -> None:
    w, h = x1 - x0, y1 - y0
    d.rectangle((x0, y0, x1, y0 + 0.3 * h), fill=255)
    d.rectangle((x0 + 0.08 * w, y0, x0 + 0.28 * w, y1), fill=255)
    d.rectangle((x1 - 0.28 * w, y0, x1 - 0.08 * w, y1), fill=255)


def _chair(d, x0, y0, x1, y1) -> None:
    w, h = x1 - x0, y1 - y0
    d.rectangle((x0 + 0.1 * w, y0, x0 + 0.35 * w, y1), fill=255)
    d.rectangle((x0 + 0.1 * w, y0 + 0.5 * h, x1 - 0.1 * w, y0 + 0.72 * h), fill=255)
    d.rectangle((x1 - 0.32 * w, y0 + 0.5 * h, x1 - 0.1 * w, y1), fill=255)


def _bench(d, x0, y0, x1, y1) -> None:
    w, h = x1 - x0, y1 - y0
    d.rectangle((x0, y0 + 0.15 * h, x1, y0 + 0.4 * h), fill=255)
    d.rectangle((x0, y0 + 0.5 * h, x1, y0 + 0.72 * h), fill=255)
    d.rectangle((x0 + 0.05 * w, y0 + 0.5 * h, x0 + 0.22 * w, y1), fill=255)
    d.rectangle((x1 - 0.22 * w, y0 + 0.5 * h, x1 - 0.05 * w, y1), fill=255)


def _tree(d, x0, y0, x1, y1) -> None:
    w, h = x1 - x0, y1 - y0
    d.ellipse((x0, y0, x1, y0 + 0.7 * h), fill=255)
    d.rectangle((x0 + 0.38 * w, y0 + 0.5 * h, x1 - 0.38 * w, y1), fill=255)


def _car(d, x0, y0, x1, y1) -> None:
    w, h = x1 - x0, y1 - y0
    d.rectangle((x0, y0 + 0.4 * h, x1, y0 + 0.78 * h), fill=255)
    d.polygon([(x0 + 0.2 * w, y0 + 0.4 * h), (x0 + 0.32 * w, y0 + 0.1 * h),
               (x1 - 0.3 * w, y0 + 0.1 * h), (x1 - 0.15 * w, y0 + 0.4 * h)], fill=255)
    r = 0.14 * w
    for cx in (x0 + 0.25 * w, x1 - 0.25 * w):
        d.ellipse((cx - r, y1 - 2 * r, cx + r, y1), fill=255)


def _boat(d, x0, y0, x1, y1) -> None:
    w, h = x1 - x0, y1 - y0
    d.polygon([(x0, y0 + 0.65 * h), (x1, y0 + 0.65 * h), (x1 - 0.18 * w, y1),
               (x0 + 0.18 * w, y1)], fill=255)
    d.polygon([(x0 + 0.5 * w, y0), (x0 + 0.5 * w, y0 + 0.6 * h), (x0 + 0.12 * w, y0 + 0.6 * h)],
              fill=255)
    d.rectangle((x0 + 0.5 * w, y0, x0 + 0.58 * w, y0 + 0.65 * h), fill=255)


def _sign(d, x0, y0, x1, y1) -> None:
    w, h = x1 - x0, y1 - y0
    d.rectangle((x0, y0, x1, y0 + 0.5 * h), fill=255)
    d.rectangle((x0 + 0.42 * w, y0 + 0.5 * h, x1 - 0.42 * w, y1), fill=255)


def _lamp(d, x0, y0, x1, y1) -> None:
    w, h = x1 - x0, y1 - y0
    d.polygon([(x0 + 0.25 * w, y0), (x1 - 0.25 * w, y0), (x1, y0 + 0.4 * h), (x0, y0 + 0.4 * h)],
              fill=255)
    d.rectangle((x0 + 0.44 * w, y0 + 0.4 * h, x1 - 0.44 * w, y1), fill=255)
    d.rectangle((x0 + 0.2 * w, y1 - 0.12 * h, x1 - 0.2 * w, y1), fill=255)


def _book(d, x0, y0, x1, y1) -> None:
    w, h = x1 - x0, y1 - y0
    d.rectangle((x0 + 0.1 * w, y0 + 0.2 * h, x1 - 0.1 * w, y1), fill=255)


def _cup(d, x0, y0, x1, y1) -> None:
    w, h = x1 - x0, y1 - y0
    d.polygon([(x0, y0 + 0.15 * h), (x1 - 0.3 * w, y0 + 0.15 * h), (x1 - 0.38 * w, y1),
               (x0 + 0.08 * w, y1)], fill=255)
    d.ellipse((x1 - 0.45 * w, y0 + 0.3 * h, x1, y0 + 0.75 * h), fill=255)


def _cat(d, x0, y0, x1, y1) -> None:
    w, h = x1 - x0, y1 - y0
    d.ellipse((x0 + 0.15 * w, y0 + 0.45 * h, x1, y1), fill=255)
    d.ellipse((x0, y0 + 0.2 * h, x0 + 0.45 * w, y0 + 0.62 * h), fill=255)
    d.polygon([(x0 + 0.02 * w, y0 + 0.32 * h), (x0 + 0.08 * w, y0), (x0 + 0.2 * w, y0 + 0.25 * h)],
              fill=255)
    d.polygon([(x0 + 0.26 * w, y0 + 0.25 * h), (x0 + 0.38 * w, y0), (x0 + 0.44 * w, y0 + 0.32 * h)],
              fill=255)


def _bird(d, x0, y0, x1, y1) -> None:
    w, h = x1 - x0, y1 - y0
    d.ellipse((x0 + 0.1 * w, y0 + 0.35 * h, x1 - 0.15 * w, y1 - 0.1 * h), fill=255)
    d.ellipse((x1 - 0.42 * w, y0 + 0.15 * h, x1 - 0.05 * w, y0 + 0.55 * h), fill=255)
    d.polygon([(x1 - 0.08 * w, y0 + 0.3 * h), (x1, y0 + 0.38 * h), (x1 - 0.08 * w, y0 + 0.45 * h)],
              fill=255)
    d.polygon([(x0, y0 + 0.5 * h), (x0 + 0.2 * w, y0 + 0.55 * h), (x0 + 0.12 * w, y0 + 0.75 * h)],
              fill=255)


SHAPES: dict[str, Callable[..., None]] = {
    "table": _table, "chair": _chair, "bench": _bench, "tree": _tree, "car": _car,
    "boat": _boat, "sign": _sign, "lamp": _lamp, "book": _book, "cup": _cup, "cat": _cat,
    "bird": _bird,
}


# Fill patterns: each draws its marks (255) over the whole image; the silhouette clips them.
def _lines(d, step: int, dx: int, dy: int) -> None:
    n = IMAGE_SIZE
    for k in range(-n, 2 * n, step):
        if dx == 0:
            d.line((k, 0, k, n), fill=255, width=2)
        elif dy == 0:
            d.line((0, k, n, k), fill=255, width=2)
        else:
            d.line((k, 0, k + dx * n, n), fill=255, width=2)


def _dots(d, step: int) -> None:
    for y in range(2, IMAGE_SIZE, step):
        for x in range(2, IMAGE_SIZE, step):
            d.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=255)


def _checks(d, step: int) -> None:
    for y in range(0, IMAGE_SIZE, step):
        for x in range(0, IMAGE_SIZE, step):
            if (x // step + y // step) % 2 == 0:
                d.rectangle((x, y, x + step - 1, y + step - 1), fill=255)


def _rings(d, step: int) -> None:
    for y in range(0, IMAGE_SIZE, step):
        for x in range(0, IMAGE_SIZE, step):
            d.ellipse((x + 1, y + 1, x + step - 2, y + step - 2), outline=255, width=1)


def _crosses(d, step: int) -> None:
    for y in range(step // 2, IMAGE_SIZE, step):
        for x in range(step // 2, IMAGE_SIZE, step):
            d.line((x - 2, y, x + 2, y), fill=255)
            d.line((x, y - 2, x, y + 2), fill=255)


PATTERNS: dict[str, Callable[[ImageDraw.ImageDraw], None]] = {
    "table": lambda d: _lines(d, 5, 0, 1), "chair": lambda d: _lines(d, 5, 1, 0),
    "bench": lambda d: _checks(d, 4), "tree": lambda d: _dots(d, 5),
    "car": lambda d: _lines(d, 6, 1, 1), "boat": lambda d: _lines(d, 6, -1, 1),
    "sign": lambda d: (_lines(d, 6, 0, 1), _lines(d, 6, 1, 0)),
    "lamp": lambda d: _rings(d, 7), "book": lambda d: _lines(d, 3, 0, 1),
    "cup": lambda d: None, "cat": lambda d: _crosses(d, 6), "bird": lambda d: _dots(d, 3),
}


def _pattern_mask(kind: str) -> Image.Image:
    mask = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
    PATTERNS[kind](ImageDraw.Draw(mask))
    return mask


_PATTERN_MASKS = {kind: _pattern_mask(kind) for kind in PATTERNS}


def object_box(scene: Scene, obj: ToyObject, jitter: random.Random | None = None) -> Box:
    """Where `obj` is drawn: centred in its cell, on the cell's floor when it sits on a
    supporter, against the cell's ceiling when something sits on it."""
    s = SIZE_PX[obj.size]
    jx = jitter.randint(-3, 3) if jitter else 0
    jy = jitter.randint(-2, 2) if jitter else 0
    x0 = obj.col * CELL + (CELL - s) / 2 + jx
    if scene.on(obj) is not None:
        y0 = (obj.row + 1) * CELL - s
    elif any(scene.on(o) is obj for o in scene.objects):
        y0 = obj.row * CELL
    else:
        y0 = obj.row * CELL + (CELL - s) / 2 + jy
    return (x0, y0, x0 + s, y0 + s)


def draw_scene(scene: Scene, seed: int = 0) -> Image.Image:
    """The image of `scene` (168 x 168 RGB); `seed` moves objects by a few pixels."""
    im = _BACKGROUND.copy()
    jitter = random.Random(seed)
    for obj in scene.objects:
        box = object_box(scene, obj, jitter)
        mask = Image.new("L", im.size, 0)
        SHAPES[obj.kind](ImageDraw.Draw(mask), *box)
        colour = RGB[obj.colour]
        im.paste(colour, mask=mask)
        shade = tuple(int(c * 0.55) for c in colour)
        im.paste(shade, mask=ImageChops.multiply(mask, _PATTERN_MASKS[obj.kind]))
        edge = ImageChops.subtract(mask, mask.filter(ImageFilter.MinFilter(3)))
        im.paste(OUTLINE, mask=edge)
    return im
