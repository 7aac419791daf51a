"""Input discovery and reading: JSONL/JSON, Parquet, CSV or a folder of images, local or
behind a URI, as a lazy Ray dataset of input rows.

Files are read by Ray tasks that stream rows out in batches, so a large input starts
flowing into the model stages at once.  Every record becomes exactly one row; a record
that cannot be used (bad JSON, missing field) becomes a row with its error.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
from pyarrow import fs

from scalecap_ray.config import InputSettings
from scalecap_ray.io import storage
from scalecap_ray.io.records import (
    failed_row,
    image_row,
    record_row,
    to_table,
)

InputKind = Literal["images", "jsonl", "json", "parquet", "csv"]
KINDS: dict[str, InputKind] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
                               ".parquet": "parquet", ".csv": "csv"}
# Rows a read task hands on at a time (fewer when they carry whole images).
ROWS_PER_BLOCK = 256
BINARY_ROWS_PER_BLOCK = 64
# The pass over a file input's ids shuffles them by id: one partition per 64 MiB of input;
# an input under that size has its ids grouped in the driver (see `dedupe.tally`).
ID_PASS_BYTES = 64 * 2**20
MAX_ID_PARTITIONS = 200


class InputError(ValueError):
    """`--input` cannot be used at all (missing, unsupported); the message says why."""


@dataclass(frozen=True)
class InputPlan:
    """What `--input` points at: its kind, and the files (or images) it holds."""

    kind: InputKind
    root: str
    files: tuple[str, ...]


def discover(path: str, retry: storage.RetryPolicy = storage.DEFAULT_RETRY) -> InputPlan:
    """Classify `path` (a file, or a folder of images); raise ValueError naming the problem."""
    if not storage.is_uri(path):
        import os

        path = os.path.abspath(path)
    lower = path.lower().rstrip("/")
    kind = next((k for ext, k in KINDS.items() if lower.endswith(ext)), None)
    if storage.is_http(path):
        if kind is None:
            raise InputError(f"input {path}: an http(s) input must be a .jsonl, .json, "
                             ".parquet or .csv file")
        return InputPlan(kind, path, (path,))
    ftype = storage.path_type(path, retry)
    if ftype == fs.FileType.NotFound:
        raise InputError(f"input {path}: no such file or folder")
    if ftype == fs.FileType.Directory:
        images = storage.list_images(path, retry)
        if not images:
            raise InputError(f"input {path}: the folder holds no images "
                             f"({', '.join(storage.IMAGE_EXTENSIONS)})")
        return InputPlan("images", path, tuple(images))
    if kind is None:
        raise InputError(f"input {path}: unsupported file type (use .jsonl, .json, .parquet, "
                         ".csv, or a folder of images)")
    return InputPlan(kind, path, (path,))


def _open_binary(path: str, retry: storage.RetryPolicy, *, seekable: bool = False):
    if storage.is_http(path):
        return io.BytesIO(storage.read_bytes(path, retry))
    filesystem, inner = storage.filesystem(path, retry)
    if seekable:  # Parquet reads its footer first
        return filesystem.open_input_file(inner)
    return io.BufferedReader(filesystem.open_input_stream(inner))


def _jsonl_records(path: str, retry):
    with _open_binary(path, retry) as f:
        for line, raw in enumerate(f, start=1):
            if raw.strip():
                yield line, raw


def read_file(path: str, file_index: int, kind: InputKind, settings: InputSettings,
              retry: storage.RetryPolicy) -> Iterator[pa.Table]:
    """Stream the rows of one input file, a block at a time."""
    def make(record, line):
        return record_row(record, path, line, file_index, settings.image_key, settings.id_key)

    rows: list[dict] = []
    per_block = ROWS_PER_BLOCK
    try:
        for line, record in _records(path, kind, retry):
            if isinstance(record, Exception):
                rows.append(failed_row(path, line, file_index, str(record)))
            else:
                rows.append(make(record, line))
                if rows[-1]["image_data"] is not None:
                    per_block = min(per_block, BINARY_ROWS_PER_BLOCK)
            if len(rows) >= per_block:
                yield to_table(rows)
                rows = []
    except (OSError, ValueError, pa.ArrowException) as exc:
        # The file itself is unreadable (or breaks off): one row says so.
        rows.append(failed_row(path, 0, file_index, f"cannot read the {kind} file: {exc}"))
    if rows:
        yield to_table(rows)


def _records(path: str, kind: InputKind, retry) -> Iterator[tuple[int, object]]:
    """(line, record) pairs; a record that cannot be parsed comes as an exception."""
    if kind == "jsonl":
        for line, raw in _jsonl_records(path, retry):
            try:
                yield line, json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield line, ValueError(f"not valid JSON ({exc})")
    elif kind == "json":
        with _open_binary(path, retry) as f:
            data = json.loads(f.read())
        if not isinstance(data, list):
            raise ValueError("a .json input must hold a list of records")
        yield from enumerate(data, start=1)
    elif kind == "parquet":
        import pyarrow.parquet as pq

        with _open_binary(path, retry, seekable=True) as f:
            line = 0
            for batch in pq.ParquetFile(f).iter_batches(batch_size=BINARY_ROWS_PER_BLOCK):
                for record in batch.to_pylist():
                    line += 1
                    yield line, record
    else:
        from pyarrow import csv

        with _open_binary(path, retry) as f:
            line = 1  # the header
            for batch in csv.open_csv(f):
                for record in batch.to_pylist():
                    line += 1
                    yield line, record


def read_rows_batch(batch: pa.Table, *, kind: InputKind, settings: InputSettings,
                    retry: storage.RetryPolicy) -> Iterator[pa.Table]:
    """Ray Data generator UDF: a batch of (file, file_index) -> the files' rows."""
    for path, index in zip(batch.column("file").to_pylist(),
                           batch.column("file_index").to_pylist(), strict=True):
        yield from read_file(path, index, kind, settings, retry)


def image_rows_batch(batch: pa.Table, *, folder: str) -> pa.Table:
    """Ray Data UDF: listed image paths -> input rows."""
    return to_table([image_row(p, folder, n) for p, n in zip(
        batch.column("path").to_pylist(), batch.column("n").to_pylist(), strict=True)])


def image_ids(plan: InputPlan, limit: int | None = None) -> list[str]:
    """The row ids of an image folder's images in input order (as `image_rows_batch`
    gives them), known without reading any image."""
    return [image_row(p, plan.root, 0)["id"] for p in plan.files[:limit]]


def id_partitions(plan: InputPlan, retry: storage.RetryPolicy) -> int | None:
    """Partitions for the pass over the ids: one per ID_PASS_BYTES of input (Ray's default,
    sized for big data, takes seconds to set up on a small input); None when the size is
    unknown."""
    sizes = [storage.file_size(f, retry) for f in plan.files]
    if any(s is None for s in sizes):
        return None
    return max(1, min(MAX_ID_PARTITIONS, -(-sum(sizes) // ID_PASS_BYTES)))


def read_input(plan: InputPlan, settings: InputSettings, retry: storage.RetryPolicy,
               num_cpus: float = 1.0):
    """A lazy Ray dataset of input rows (nothing is read until it executes)."""
    import ray.data

    if plan.kind == "images":
        items = [{"path": p, "n": i} for i, p in enumerate(plan.files, start=1)]
        ds = ray.data.from_items(items, override_num_blocks=-(-len(items) // ROWS_PER_BLOCK))
        return ds.map_batches(image_rows_batch, fn_kwargs={"folder": plan.root},
                              batch_format="pyarrow", num_cpus=num_cpus)
    items = [{"file": f, "file_index": i} for i, f in enumerate(plan.files)]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    return ds.map_batches(read_rows_batch, batch_size=1, batch_format="pyarrow",
                          fn_kwargs={"kind": plan.kind, "settings": settings, "retry": retry},
                          num_cpus=num_cpus)
