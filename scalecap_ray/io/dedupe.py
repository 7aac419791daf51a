"""Duplicate ids and resume: which input rows to process.

Duplicates: the first occurrence of an id (in input order: file, then line) is processed;
every later one becomes an error row (stage "read") whose id gets a `#dup-<order>` suffix,
so output ids stay unique and a resumed run recognises each row.

Resume: ids already in the output are skipped.  They travel to the tasks as a sorted array
of 64-bit hashes (8 bytes an id, however long the ids are).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from scalecap_ray.io.records import LINE_BITS
from scalecap_ray.stages.batch import ERROR, ERROR_STAGE


def id_hash(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "little")


def hash_ids(ids) -> np.ndarray:
    return np.array(sorted({id_hash(i) for i in ids}), dtype=np.uint64)


def duplicate_firsts(ds) -> dict[str, int]:
    """For every id that occurs more than once: the order key of its first occurrence.
    Runs one pass over the ids (a shuffle by id), before any model work."""
    from ray.data.aggregate import Count, Min
    from ray.data.expressions import col

    counted = ds.select_columns(["id", "order"]).groupby("id").aggregate(
        Count(alias_name="n"), Min("order", alias_name="first"))
    return {r["id"]: r["first"] for r in counted.filter(expr=col("n") > 1).take_all()}


def where(order: int, files: tuple[str, ...]) -> str:
    return f"{files[order >> LINE_BITS]}:{order & ((1 << LINE_BITS) - 1)}"


def prepare(batch: pa.Table, *, firsts: dict[str, int], done: np.ndarray,
            files: tuple[str, ...]) -> pa.Table:
    """Mark later duplicates as errors (with unique ids), then drop rows already done."""
    ids = batch.column("id").to_pylist()
    if firsts:
        orders = batch.column("order").to_pylist()
        errors = batch.column(ERROR).to_pylist()
        stages = batch.column(ERROR_STAGE).to_pylist()
        for i, (rid, order) in enumerate(zip(ids, orders, strict=True)):
            first = firsts.get(rid)
            if first is not None and order != first and errors[i] is None:
                errors[i] = (f"{where(order, files)}: duplicate id {rid!r}, first at "
                             f"{where(first, files)}")
                stages[i] = "read"
                ids[i] = f"{rid}#dup-{order}"
        batch = batch.set_column(batch.column_names.index("id"), "id", pa.array(ids, pa.string()))
        batch = batch.set_column(batch.column_names.index(ERROR), ERROR,
                                 pa.array(errors, pa.string()))
        batch = batch.set_column(batch.column_names.index(ERROR_STAGE), ERROR_STAGE,
                                 pa.array(stages, pa.string()))
    if len(done):
        hashes = np.array([id_hash(i) for i in ids], dtype=np.uint64)
        pos = np.clip(np.searchsorted(done, hashes), 0, len(done) - 1)
        batch = batch.filter(pa.array(done[pos] != hashes))
    return batch
