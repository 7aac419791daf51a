"""`scalecap-ray export`: the Parquet output as DataFlow-MM's JSONL records."""

from __future__ import annotations

import json
import sys
from typing import IO

from scalecap_ray.io.output import OutputFolder


def export_jsonl(output: str, sink: IO[str], *, include_errors: bool = True) -> int:
    """Write one JSON line per output row: `image` plus `scalecap_record` (ScaleCap job)
    or `caption` (caption job), and `id`; failed rows carry `error` and `error_stage`.
    Returns the number of lines written."""
    folder = OutputFolder(output)
    run = folder.read_run()
    if run is None:
        raise ValueError(f"{output}: not a scalecap-ray output (no run record)")
    dataset = folder.dataset()
    payload = run["payload"]
    columns = [c for c in ("id", "image", payload, "error", "error_stage")
               if c in dataset.schema.names]
    n = 0
    for batch in dataset.to_batches(columns=columns):
        for row in batch.to_pylist():
            if row.get("error") is None:
                row.pop("error", None)
                row.pop("error_stage", None)
            elif not include_errors:
                continue
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def export(output: str, fmt: str, out_file: str | None, *, include_errors: bool = True) -> int:
    if fmt != "jsonl":
        raise ValueError(f"unsupported format {fmt!r} (use jsonl)")
    if out_file is None:
        return export_jsonl(output, sys.stdout, include_errors=include_errors)
    with open(out_file, "w", encoding="utf-8") as f:
        return export_jsonl(output, f, include_errors=include_errors)
