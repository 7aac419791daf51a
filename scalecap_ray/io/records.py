"""Input rows: one per image reference, built from whatever record the input holds.

A row knows where it came from (`source` file and 1-based `line`, or row number for
Parquet/CSV), so every error can name its input.  Unusable records become rows with
`error` set at stage "read": they reach the output like every other row.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pyarrow as pa

from scalecap_ray.io.storage import dirname, is_uri, join
from scalecap_ray.stages.batch import BOOKKEEPING, ERROR, ERROR_STAGE, USAGE

INPUT_COLUMNS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "image": pa.string(),  # the reference as given
    "image_uri": pa.string(),  # the resolved path or URI the loader reads
    "source": pa.string(),  # the input file (or folder) the row came from
    "line": pa.int64(),  # 1-based line (JSONL), record (JSON) or row (Parquet, CSV)
    "order": pa.int64(),  # input order: file index, then line (decides duplicates)
    "image_data": pa.binary(),  # encoded image bytes, when the input holds them
}
ROW_SCHEMA = pa.schema({**INPUT_COLUMNS, **BOOKKEEPING})
LINE_BITS = 40  # lines per file before the order key overflows into the file index


def stable_id(reference: str) -> str:
    """The default row id: a hash of the resolved image reference (same input, same id)."""
    return hashlib.sha1(reference.encode()).hexdigest()[:16]


def order_key(file_index: int, line: int) -> int:
    return (file_index << LINE_BITS) | line


def resolve(ref: str, base_dir: str) -> str:
    if is_uri(ref) or os.path.isabs(ref):
        return ref
    if is_uri(base_dir):
        return join(base_dir, ref)
    return os.path.normpath(os.path.join(base_dir, ref))


def empty_row(source: str, line: int, file_index: int) -> dict[str, Any]:
    return {"id": None, "image": None, "image_uri": None, "source": source, "line": line,
            "order": order_key(file_index, line), "image_data": None, ERROR: None,
            ERROR_STAGE: None, USAGE: []}


def failed_row(source: str, line: int, file_index: int, message: str) -> dict[str, Any]:
    row = empty_row(source, line, file_index)
    row[ERROR], row[ERROR_STAGE] = f"{source}:{line}: {message}", "read"
    row["id"] = stable_id(f"{source}\n{line}")
    return row


def record_row(record: Any, source: str, line: int, file_index: int, image_key: str,
               id_key: str | None) -> dict[str, Any]:
    """The row for one parsed record (a dict of fields)."""
    if not isinstance(record, dict):
        return failed_row(source, line, file_index, "expected a JSON object")
    ref = record.get(image_key)
    if isinstance(ref, list):  # the seed's list-of-images format: the first one
        ref = ref[0] if ref else None
    row = empty_row(source, line, file_index)
    if isinstance(ref, bytes | bytearray):
        row["image"] = f"{os.path.basename(source)}#row={line}"
        row["image_uri"] = f"{source}#row={line}"
        row["image_data"] = bytes(ref)
    elif isinstance(ref, str) and ref.strip():
        row["image"] = ref
        row["image_uri"] = resolve(ref.strip(), dirname(source))
    else:
        return failed_row(source, line, file_index,
                          f"field {image_key!r} must be an image path, URI or bytes")
    if id_key is not None:
        rid = record.get(id_key)
        if rid is None or rid == "":
            return failed_row(source, line, file_index, f"id field {id_key!r} is missing")
        row["id"] = str(rid)
    else:
        row["id"] = stable_id(row["image_uri"])
    return row


def image_row(path: str, folder: str, line: int) -> dict[str, Any]:
    """The row for one file found in an image folder."""
    row = empty_row(folder, line, 0)
    rel = path[len(folder.rstrip("/")) + 1:] if path.startswith(folder.rstrip("/")) else path
    row["image"], row["image_uri"], row["id"] = rel, path, stable_id(path)
    return row


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)
