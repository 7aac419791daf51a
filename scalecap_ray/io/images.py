"""Image decoding and normalisation, done once before the first model stage.

Every model stage receives the same compact RGB JPEG, already oriented and sized for the
model, so no later stage reads storage or decodes an odd format again.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

from PIL import Image, ImageOps

from scalecap_ray.config import ImageSettings

DEFAULT_IMAGE = ImageSettings()


class ImageError(ValueError):
    """An input that cannot be turned into a model image; the message says why."""


@dataclass(frozen=True)
class NormalizedImage:
    data: bytes  # RGB JPEG
    width: int
    height: int
    digest: str  # content hash of `data`: the image's cache key in the engines


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale into 8 bits instead of clipping to white.
        hi = max(im.getextrema()[1], 1)
        im = im.point(lambda v: v * 255.0 / hi).convert("L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB")


def _target_size(w: int, h: int, cfg: ImageSettings) -> tuple[int, int]:
    """Fit (w, h) into the pixel budget and the model's shortest side, keeping the aspect
    ratio; raise when no size satisfies both."""
    if max(w, h) / min(w, h) > cfg.max_aspect_ratio:
        raise ImageError(f"image is {w}x{h}: its aspect ratio is over the model's limit of "
                         f"{cfg.max_aspect_ratio:g}")
    pixels = w * h
    scale = 1.0
    if pixels > cfg.max_pixels:
        scale = math.sqrt(cfg.max_pixels / pixels)
    elif pixels < cfg.min_pixels:
        scale = math.sqrt(cfg.min_pixels / pixels)
    scale = max(scale, cfg.min_side / min(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size[0] * size[1] > cfg.max_pixels * 1.01:
        raise ImageError(f"image is {w}x{h}: it cannot be scaled to a shortest side of "
                         f"{cfg.min_side} px within the budget of {cfg.max_pixels} pixels")
    return size


def normalize_image(data: bytes, cfg: ImageSettings = DEFAULT_IMAGE) -> NormalizedImage:
    """Decode `data`, orient by EXIF, take the first frame, make it RGB (alpha on white),
    fit it into the model's size limits keeping the aspect ratio, and re-encode it as
    JPEG.  Raises `ImageError` with the reason when that is impossible."""
    if not data:
        raise ImageError("empty file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > cfg.pixel_limit:
                raise ImageError(f"image is {w}x{h} = {w * h} pixels, over the limit of "
                                 f"{cfg.pixel_limit}")
            im.seek(0)
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = _to_rgb(im)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image over the pixel limit: {exc}") from exc
    except Exception as exc:  # PIL raises many types for bad files
        raise ImageError(f"not a decodable image: {exc}") from exc
    size = _target_size(*rgb.size, cfg)
    if size != rgb.size:
        rgb = rgb.resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=cfg.jpeg_quality)
    out = buf.getvalue()
    return NormalizedImage(out, rgb.width, rgb.height,
                           hashlib.blake2b(out, digest_size=16).hexdigest())
