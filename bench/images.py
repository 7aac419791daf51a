"""Distinct benchmark images: variations of the bundled example scenes.

Every image differs in content (shifted crop, colours, an extra shape and its number), so
no two share an image hash and no request hits another image's cached prefix; sizes stay
close to the examples', so prompt lengths match the examples'.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

REPO = Path(__file__).resolve().parents[1]
SCENES = sorted((REPO / "examples" / "images").glob("*.png"))


def variant(i: int) -> Image.Image:
    rng = random.Random(i)
    with Image.open(SCENES[i % len(SCENES)]) as src:
        im = src.convert("RGB")
    w, h = im.size
    dx, dy = rng.randint(0, w // 10), rng.randint(0, h // 10)
    im = im.crop((dx, dy, w - w // 10 + dx, h - h // 10 + dy))
    im = ImageOps.autocontrast(im, cutoff=rng.randint(0, 5))
    d = ImageDraw.Draw(im)
    x, y = rng.randint(0, im.width - 30), rng.randint(0, im.height - 30)
    colour = tuple(rng.randint(0, 255) for _ in range(3))
    d.ellipse((x, y, x + rng.randint(10, 30), y + rng.randint(10, 30)), fill=colour)
    d.text((4, 4), str(i), fill=(0, 0, 0))
    return im


def write_images(n: int, folder: Path) -> Path:
    """`n` distinct PNGs under `folder` and a JSONL listing them; returns the JSONL path."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        path = folder / f"img{i:05d}.png"
        if not path.exists():
            variant(i).save(path)
        lines.append(json.dumps({"id": f"img{i:05d}", "image": str(path)}))
    listing = folder / f"images-{n}.jsonl"
    listing.write_text("\n".join(lines) + "\n")
    return listing
