"""Per-batch bookkeeping shared by every stage: Arrow in, Python lists while working,
Arrow out with declared types, and the per-row `error`, `error_stage` and usage columns.

A row that failed in an earlier stage passes through later stages untouched, so every
input row reaches the output (rows in == rows out) carrying what it had when it failed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from scalecap_ray.engine.types import ChatEngine, ChatRequest, ChatResult, Sampling

ERROR = "error"
ERROR_STAGE = "error_stage"
USAGE = "stage_usage"

USAGE_FIELDS = ("requests", "prompt_tokens", "cached_tokens", "output_tokens")
USAGE_TYPE = pa.list_(
    pa.struct([pa.field("stage", pa.string()),
               *(pa.field(f, pa.int64()) for f in USAGE_FIELDS),
               pa.field("seconds", pa.float64())])
)
# Columns every row carries from the load stage on.
BOOKKEEPING: dict[str, pa.DataType] = {
    ERROR: pa.string(),
    ERROR_STAGE: pa.string(),
    USAGE: USAGE_TYPE,
}


# What a stage that sends the image reads.
IMAGE_READS = ("image_bytes", "image_hash", "image_uri")


def image_args(rows: Rows, i: int) -> dict[str, Any]:
    """Row `i`'s image for a request: the loaded bytes, their cache key, and the source
    URL when it is http(s) (an API backend may send that instead: `send_image_urls`)."""
    uri = rows.cols["image_uri"][i]
    url = uri if isinstance(uri, str) and uri.startswith(("http://", "https://")) else None
    return {"image": rows.cols["image_bytes"][i], "image_key": rows.cols["image_hash"][i],
            "image_url": url}


class Rows:
    """One batch as Python lists: the columns a stage reads, and those it writes."""

    def __init__(self, table: pa.Table, reads: Iterable[str]):
        self.table = table
        self.n = table.num_rows
        self.cols: dict[str, list[Any]] = {c: table.column(c).to_pylist() for c in reads}
        self.error: list[str | None] = table.column(ERROR).to_pylist()
        self.error_stage: list[str | None] = table.column(ERROR_STAGE).to_pylist()
        self.usage: list[list[dict]] = [u or [] for u in table.column(USAGE).to_pylist()]
        self.out: dict[str, list[Any]] = {}

    def active(self) -> list[int]:
        """Rows that have not failed so far."""
        return [i for i in range(self.n) if self.error[i] is None]

    def fail(self, i: int, stage: str, message: str) -> None:
        self.error[i] = message
        self.error_stage[i] = stage

    def output(self, name: str, default: Any = None) -> list[Any]:
        """The list for output column `name` (created filled with `default`, or with the
        values the column already has when the batch carries it)."""
        if name not in self.out:
            if name in self.table.column_names:
                self.out[name] = self.table.column(name).to_pylist()
            else:
                self.out[name] = [default] * self.n
        return self.out[name]

    def account(self, i: int, stage: str, results: Sequence[ChatResult], seconds: float) -> None:
        entry = {"stage": stage, "requests": len(results), "seconds": seconds,
                 "prompt_tokens": sum(r.prompt_tokens for r in results),
                 "cached_tokens": sum(r.cached_tokens for r in results),
                 "output_tokens": sum(r.output_tokens for r in results)}
        self.usage[i].append(entry)

    def to_table(self, writes: Mapping[str, pa.DataType]) -> pa.Table:
        """The batch with this stage's columns set (typed as declared) and bookkeeping
        updated; columns the stage did not touch pass through."""
        table = self.table
        columns = {**{k: self.output(k) for k in writes}, ERROR: self.error,
                   ERROR_STAGE: self.error_stage, USAGE: self.usage}
        types = {**writes, **BOOKKEEPING}
        for name, values in columns.items():
            array = pa.array(values, type=types[name])
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, array)
            else:
                table = table.append_column(pa.field(name, types[name]), array)
        return table


def call_engine(
    engine: ChatEngine,
    rows: Rows,
    stage: str,
    requests: Mapping[int, Sequence[ChatRequest]],
    sampling: Sampling,
) -> dict[int, list[ChatResult]]:
    """Send every row's requests in one engine call; record usage; fail the rows whose
    requests failed.  Returns the results of the rows that succeeded."""
    flat = [(i, req) for i, reqs in requests.items() for req in reqs]
    start = time.perf_counter()
    results = engine.chat([req for _, req in flat], sampling) if flat else []
    # Wall time of the call, shared out over the requests it carried.
    per_request = (time.perf_counter() - start) / max(len(flat), 1)
    by_row: dict[int, list[ChatResult]] = {i: [] for i in requests}
    for (i, _), res in zip(flat, results, strict=True):
        by_row[i].append(res)
    ok: dict[int, list[ChatResult]] = {}
    for i, res in by_row.items():
        if res:  # a row with nothing to ask (no questions) made no call
            rows.account(i, stage, res, per_request * len(res))
        failed = [r.error for r in res if r.error]
        if failed:
            extra = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            rows.fail(i, stage, f"{stage}: model request failed: {failed[0]}{extra}")
        else:
            ok[i] = res
    return ok
