"""Load: read each image once, normalise it, and carry it as bytes from here on."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from scalecap_ray.io.images import ImageError, normalize_image
from scalecap_ray.stages.batch import Rows


def read_bytes(uri: str) -> bytes:
    """The raw bytes behind a path or URI (any filesystem pyarrow knows)."""
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri) if "://" in uri else (fs.LocalFileSystem(), uri)
    with filesystem.open_input_stream(path) as f:
        return f.read()


class LoadStage:
    """Reads `image_uri`, writes the normalised image (`image_bytes`, JPEG), its size and
    its content hash (`image_hash`, the key engines cache it under)."""

    name = "load"
    reads = ("image_uri",)
    writes: ClassVar[dict[str, pa.DataType]] = {
        "image_bytes": pa.binary(),
        "image_hash": pa.string(),
        "width": pa.int32(),
        "height": pa.int32(),
    }

    def __init__(self, *, max_pixels: int, min_pixels: int, pixel_limit: int):
        self.limits = {"max_pixels": max_pixels, "min_pixels": min_pixels,
                       "pixel_limit": pixel_limit}

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = Rows(batch, self.reads)
        for i in rows.active():
            uri = rows.cols["image_uri"][i]
            try:
                image = normalize_image(read_bytes(uri), **self.limits)
            except ImageError as exc:
                rows.fail(i, self.name, f"{uri}: {exc}")
                continue
            except OSError as exc:
                rows.fail(i, self.name, f"{uri}: cannot read: {exc}")
                continue
            rows.output("image_bytes")[i] = image.data
            rows.output("image_hash")[i] = image.digest
            rows.output("width")[i] = image.width
            rows.output("height")[i] = image.height
        return rows.to_table(self.writes)
