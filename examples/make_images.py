"""Draw the bundled example images (simple scenes: enough for the smoke model and for
trying a real model).  Run from the repository root: `python examples/make_images.py`."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent
OUT = HERE / "images"


def _sky_and_ground(w: int, h: int, sky, ground, horizon: float = 0.6):
    im = Image.new("RGB", (w, h), sky)
    ImageDraw.Draw(im).rectangle((0, int(h * horizon), w, h), fill=ground)
    return im


def house() -> Image.Image:
    im = _sky_and_ground(320, 240, (135, 190, 235), (90, 160, 70))
    d = ImageDraw.Draw(im)
    d.rectangle((100, 100, 220, 190), fill=(200, 80, 60))
    d.polygon([(90, 100), (160, 50), (230, 100)], fill=(110, 60, 40))
    d.rectangle((145, 140, 175, 190), fill=(70, 40, 20))
    d.ellipse((260, 20, 300, 60), fill=(250, 220, 60))
    return im


def table_with_cup() -> Image.Image:
    im = Image.new("RGB", (300, 300), (235, 225, 210))
    d = ImageDraw.Draw(im)
    d.rectangle((30, 180, 270, 200), fill=(120, 80, 40))
    d.rectangle((50, 200, 65, 290), fill=(100, 65, 30))
    d.rectangle((235, 200, 250, 290), fill=(100, 65, 30))
    d.rectangle((120, 130, 165, 180), fill=(220, 30, 40))
    d.arc((155, 140, 185, 170), -90, 90, fill=(220, 30, 40), width=5)
    return im


def street_sign() -> Image.Image:
    im = _sky_and_ground(240, 320, (180, 200, 220), (90, 90, 95), horizon=0.75)
    d = ImageDraw.Draw(im)
    d.rectangle((115, 120, 125, 260), fill=(60, 60, 60))
    d.regular_polygon((120, 90, 50), 8, fill=(200, 20, 20))
    d.text((98, 84), "STOP", fill=(255, 255, 255))
    return im


def boat() -> Image.Image:
    im = _sky_and_ground(360, 200, (170, 210, 240), (40, 90, 160), horizon=0.55)
    d = ImageDraw.Draw(im)
    d.polygon([(120, 120), (240, 120), (220, 150), (140, 150)], fill=(250, 250, 250))
    d.line((180, 120, 180, 40), fill=(80, 60, 40), width=4)
    d.polygon([(182, 45), (182, 115), (230, 115)], fill=(240, 200, 60))
    return im


def cat_on_chair() -> Image.Image:
    im = Image.new("RGB", (260, 260), (210, 230, 215))
    d = ImageDraw.Draw(im)
    d.rectangle((60, 150, 200, 165), fill=(60, 100, 160))
    d.rectangle((60, 70, 75, 250), fill=(60, 100, 160))
    d.rectangle((185, 165, 200, 250), fill=(60, 100, 160))
    d.ellipse((95, 105, 165, 155), fill=(40, 40, 40))
    d.ellipse((140, 85, 175, 120), fill=(40, 40, 40))
    d.polygon([(145, 90), (150, 72), (158, 88)], fill=(40, 40, 40))
    d.polygon([(160, 88), (168, 72), (172, 92)], fill=(40, 40, 40))
    return im


def tree_and_bench() -> Image.Image:
    im = _sky_and_ground(400, 260, (200, 225, 245), (120, 180, 90))
    d = ImageDraw.Draw(im)
    d.rectangle((80, 110, 100, 200), fill=(100, 70, 40))
    d.ellipse((40, 40, 140, 130), fill=(40, 130, 50))
    d.rectangle((220, 170, 340, 180), fill=(150, 100, 60))
    d.rectangle((230, 180, 236, 205), fill=(90, 90, 90))
    d.rectangle((324, 180, 330, 205), fill=(90, 90, 90))
    return im


SCENES = {
    "house": house,
    "table_with_cup": table_with_cup,
    "street_sign": street_sign,
    "boat": boat,
    "cat_on_chair": cat_on_chair,
    "tree_and_bench": tree_and_bench,
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    lines = []
    for name, draw in SCENES.items():
        path = OUT / f"{name}.png"
        draw().save(path, optimize=True)
        lines.append(json.dumps({"image": f"images/{path.name}"}))
    (HERE / "images.jsonl").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
