"""Load: read each image once, normalise it, and carry it as bytes from here on."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from scalecap_ray.config import ImageSettings
from scalecap_ray.io.images import ImageError, normalize_image
from scalecap_ray.io.storage import ReadError, RetryPolicy, read_bytes
from scalecap_ray.stages.batch import Rows


class LoadStage:
    """Reads `image_uri` (or the bytes the input carried in `image_data`), writes the
    normalised image (`image_bytes`, JPEG), its size and its content hash (`image_hash`,
    the key engines cache it under)."""

    name = "load"
    reads = ("image_uri", "image_data")
    writes: ClassVar[dict[str, pa.DataType]] = {
        "image_bytes": pa.binary(),
        "image_hash": pa.string(),
        "width": pa.int32(),
        "height": pa.int32(),
    }

    def __init__(self, *, image: ImageSettings, retry: RetryPolicy):
        self.image, self.retry = image, retry

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = Rows(batch, self.reads)
        for i in rows.active():
            uri, data = rows.cols["image_uri"][i], rows.cols["image_data"][i]
            try:
                image = normalize_image(data if data is not None else
                                        read_bytes(uri, self.retry), self.image)
            except (ImageError, ReadError) as exc:
                rows.fail(i, self.name, f"{uri}: {exc}")
                continue
            rows.output("image_bytes")[i] = image.data
            rows.output("image_hash")[i] = image.digest
            rows.output("width")[i] = image.width
            rows.output("height")[i] = image.height
        return rows.to_table(self.writes)
