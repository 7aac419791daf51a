"""Input: JSONL records naming images, as a Ray dataset of one row per image.

A record is `{"image": "path/or/uri"}` (the seed's format), optionally with an id field.
When `image` holds a list of paths (the seed's ImageCaptionGenerate format), the first one
is captioned.  Relative paths resolve against the JSONL file's folder.  A line that is not
a valid record becomes an output row with its error, never a lost row.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pyarrow as pa

from scalecap_ray.config import InputSettings
from scalecap_ray.stages.batch import BOOKKEEPING, ERROR, ERROR_STAGE, USAGE

INPUT_COLUMNS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "image": pa.string(),  # the reference as given
    "image_uri": pa.string(),  # resolved path or URI the loader reads
}


def stable_id(uri: str) -> str:
    """The default row id: a hash of the resolved image reference (same input, same id)."""
    return hashlib.sha1(uri.encode()).hexdigest()[:16]


def resolve(ref: str, base_dir: str) -> str:
    if "://" in ref or os.path.isabs(ref):
        return ref
    return os.path.normpath(os.path.join(base_dir, ref))


def parse_record(line: str, source: str, settings: InputSettings) -> dict[str, Any]:
    """One input line -> one row (with `error` set when the line is unusable)."""
    row: dict[str, Any] = {"id": None, "image": None, "image_uri": None, ERROR: None,
                           ERROR_STAGE: None, USAGE: []}
    where = f"{source}: line {line[:60]!r}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        row[ERROR] = f"{where}: not valid JSON ({exc.msg})"
    else:
        if not isinstance(record, dict):
            row[ERROR] = f"{where}: expected a JSON object"
        else:
            _fill(row, record, source, settings, where)
    row[ERROR_STAGE] = "read" if row[ERROR] else None
    if row["id"] is None:
        row["id"] = stable_id(row["image_uri"] or f"{source}\n{line}")
    return row


def _fill(row: dict, record: dict, source: str, settings: InputSettings, where: str) -> None:
    ref = record.get(settings.image_key)
    if isinstance(ref, list):
        ref = ref[0] if ref else None
    if not isinstance(ref, str) or not ref.strip():
        row[ERROR] = f"{where}: field {settings.image_key!r} must be an image path or URI"
        return
    row["image"] = ref
    row["image_uri"] = resolve(ref.strip(), os.path.dirname(source))
    if settings.id_key is not None:
        rid = record.get(settings.id_key)
        if rid is None:
            row[ERROR] = f"{where}: id field {settings.id_key!r} is missing"
        else:
            row["id"] = str(rid)


def parse_batch(batch: pa.Table, settings: InputSettings) -> pa.Table:
    """Ray Data task: the `text`/`path` rows of `read_text` -> input rows."""
    rows = [parse_record(line, path, settings)
            for line, path in zip(batch.column("text").to_pylist(),
                                  batch.column("path").to_pylist(), strict=True)]
    schema = pa.schema({**INPUT_COLUMNS, **BOOKKEEPING})
    return pa.Table.from_pylist(rows, schema=schema)


def read_jsonl(path: str, settings: InputSettings, num_cpus: float = 1.0):
    """A lazy Ray dataset of input rows (no reading happens until it executes)."""
    import ray.data

    ds = ray.data.read_text(path, include_paths=True, num_cpus=num_cpus)
    ds = ds.map_batches(parse_batch, fn_kwargs={"settings": settings}, batch_format="pyarrow",
                        num_cpus=num_cpus)
    if settings.limit is not None:
        ds = ds.limit(settings.limit)
    return ds
