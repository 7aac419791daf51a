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

# Qwen2.5-VL's usual budget: 1280 patches of 28x28 pixels.
DEFAULT_MAX_PIXELS = 1280 * 28 * 28
DEFAULT_MIN_PIXELS = 56 * 56
# Refuse to decode anything larger (decompression bombs): ~180 megapixels.
DEFAULT_PIXEL_LIMIT = 178_956_970


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


def _target_size(w: int, h: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    pixels = w * h
    scale = 1.0
    if pixels > max_pixels:
        scale = math.sqrt(max_pixels / pixels)
    elif pixels < min_pixels:
        scale = math.sqrt(min_pixels / pixels)
    if scale == 1.0:
        return w, h
    return max(1, round(w * scale)), max(1, round(h * scale))


def normalize_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    pixel_limit: int = DEFAULT_PIXEL_LIMIT,
    quality: int = 95,
) -> NormalizedImage:
    """Decode `data`, orient by EXIF, take the first frame, make it RGB (alpha on white),
    fit it between `min_pixels` and `max_pixels` keeping the aspect ratio, and re-encode
    it as JPEG.  Raises `ImageError` with the reason when that is impossible."""
    if not data:
        raise ImageError("empty file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > pixel_limit:
                raise ImageError(f"image is {w}x{h} = {w * h} pixels, over the limit of "
                                 f"{pixel_limit}")
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
    size = _target_size(*rgb.size, min_pixels, max_pixels)
    if size != rgb.size:
        rgb = rgb.resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=quality)
    out = buf.getvalue()
    return NormalizedImage(out, rgb.width, rgb.height,
                           hashlib.blake2b(out, digest_size=16).hexdigest())
