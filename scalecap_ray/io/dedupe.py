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


def _member(done: np.ndarray, ids: list[str]) -> np.ndarray:
    """For each id: is it among the `done` hashes?"""
    if not len(done) or not ids:
        return np.zeros(len(ids), dtype=bool)
    hashes = np.array([id_hash(i) for i in ids], dtype=np.uint64)
    pos = np.clip(np.searchsorted(done, hashes), 0, len(done) - 1)
    return done[pos] == hashes


def _dup_todo(batch: pa.Table, *, done: np.ndarray) -> pa.Table:
    """Per row: would it still be to do as a later duplicate (under its `#dup-` id)?"""
    ids, orders = batch.column("id").to_pylist(), batch.column("order").to_pylist()
    dup_ids = [f"{i}#dup-{o}" for i, o in zip(ids, orders, strict=True)] if len(done) else []
    todo = ~_member(done, dup_ids) if len(done) else np.ones(len(ids), dtype=bool)
    return pa.table({"id": batch.column("id"), "order": batch.column("order"),
                     "dup_todo": pa.array(todo.astype(np.int64))})


def _group_todo(batch: pa.Table, *, done: np.ndarray) -> pa.Table:
    """Per id group (n, first order, rows to do as duplicates): the rows of the group still
    to do, kept only for ids that occur more than once, plus one row (id null) with the
    total of the rest of the batch."""
    ids, n = batch.column("id").to_pylist(), batch.column("n").to_numpy()
    first, dup_todo = batch.column("first").to_numpy(), batch.column("dup_todo").to_numpy()
    first_todo = ~_member(done, ids)
    dups = np.flatnonzero(n > 1)
    # In a group the first occurrence keeps the plain id: swap its share of `dup_todo`
    # for whether the plain id is still to do.
    first_as_dup = ~_member(done, [f"{ids[i]}#dup-{first[i]}" for i in dups])
    todo = first_todo.astype(np.int64)
    todo[dups] = dup_todo[dups] - first_as_dup + first_todo[dups]
    single = int(todo[n == 1].sum())
    return pa.table({"id": [ids[i] for i in dups] + [None],
                     "first": [int(first[i]) for i in dups] + [None],
                     "todo": [int(todo[i]) for i in dups] + [single]},
                    schema=pa.schema([("id", pa.string()), ("first", pa.int64()),
                                      ("todo", pa.int64())]))


def todo_count(ids: list[str], done: np.ndarray) -> int:
    """How many of `ids` are not among the `done` hashes."""
    return int((~_member(done, ids)).sum())


def _collect(rows: list[dict]) -> tuple[dict[str, int], int]:
    """`_group_todo`'s rows -> (first order of each duplicated id, rows to do)."""
    firsts, todo = {}, 0
    for row in rows:
        todo += row["todo"]
        if row["id"] is not None:
            firsts[row["id"]] = row["first"]
    return firsts, todo


def tally(ds, done: np.ndarray, *, num_cpus: float, num_partitions: int | None = None
          ) -> tuple[dict[str, int], int]:
    """One pass over the ids, before any model work: for every id that occurs more than
    once the order key of its first occurrence, and how many rows are still to do (not
    among the `done` hashes; a later duplicate counts under its `#dup-` id, as `prepare`
    renames it).  With one partition (a small input) the ids are grouped here, in the
    driver: Ray's shuffle takes seconds to set up, streaming the ids a fraction of that."""
    from ray.data.aggregate import Count, Min, Sum

    ids = ds.select_columns(["id", "order"]).map_batches(
        _dup_todo, batch_format="pyarrow", fn_kwargs={"done": done}, num_cpus=num_cpus)
    if num_partitions == 1:
        batches = list(ids.iter_batches(batch_format="pyarrow", batch_size=None))
        if not batches:
            return {}, 0
        grouped = pa.concat_tables(batches).group_by("id").aggregate(
            [("order", "count"), ("order", "min"), ("dup_todo", "sum")])
        grouped = grouped.rename_columns(
            {"order_count": "n", "order_min": "first", "dup_todo_sum": "dup_todo"})
        return _collect(_group_todo(grouped, done=done).to_pylist())
    grouped = ids.groupby("id", num_partitions=num_partitions).aggregate(
        Count(alias_name="n"), Min("order", alias_name="first"),
        Sum("dup_todo", alias_name="dup_todo"))
    return _collect(grouped.map_batches(_group_todo, batch_format="pyarrow",
                                        num_cpus=num_cpus, fn_kwargs={"done": done}).take_all())


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
        batch = batch.filter(pa.array(~_member(done, ids)))
    return batch
