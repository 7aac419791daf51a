"""Benchmark 1: the pipeline against the engine-only bound.

The bound runs the ScaleCap stages in one process, with no Ray: one vLLM engine, every
image's requests of a stage sent in one call (the largest batches the engine can get),
stage after stage.  The pipeline is `scalecap-ray run` on the same images and model.
Both are timed from process start to exit; the pipeline's manifest says where its time
went (engine start-up, streaming, engine busy time), and the difference is split into
fixed costs, engine start-up, engine work and engine idle time.  The CPU seconds of each
side's processes, by kind, show what runs beside the engine.

    .venv/bin/python bench/engine_bound.py [--images 200] [--model PATH] [--out DIR]
        [--set key=value ...]   (pipeline settings, e.g. stages.answer.concurrency=2)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import model_path, run_measured, run_pipeline, save
from images import write_images


def bound(listing: Path, model: str) -> dict:
    """The stages over all rows at once on an in-process engine (no Ray); seconds each."""
    from scalecap_ray.config import load_config
    from scalecap_ray.engine.vllm_engine import LocalEngine
    from scalecap_ray.io.records import record_row, to_table
    from scalecap_ray.pipeline import plan_scalecap_job

    plan = plan_scalecap_job(load_config(None, [f"vlm.model={model}", f"llm.model={model}"]))
    lines = listing.read_text().splitlines()
    table = to_table([record_row(json.loads(line), str(listing), i + 1, 0, "image", "id")
                      for i, line in enumerate(lines)])
    clock = time.perf_counter()
    stages: dict[str, float] = {}
    with LocalEngine(plan.engines["vlm"][1].engine_config()) as engine:
        startup = time.perf_counter() - clock
        for stage in plan.stages:
            kwargs = dict(stage.kwargs)
            if stage.role is not None:
                kwargs["engine"] = engine
            t = time.perf_counter()
            table = stage.cls(**kwargs)(table)
            stages[stage.name] = round(time.perf_counter() - t, 3)
    requests = sum(e["requests"] for u in table.column("stage_usage").to_pylist()
                   for e in u or [])
    return {"engine_startup_s": round(startup, 3), "stages_s": stages,
            "engine_s": round(sum(v for k, v in stages.items() if k != "load"), 3),
            "requests": requests,
            "ok": table.column("error").null_count}


def timed_bound(listing: Path, model: str) -> dict:
    """`bound` in a fresh process, timed from its start like the pipeline."""
    proc, wall, cpu = run_measured([sys.executable, __file__, "--bound-only", str(listing),
                                    "--model", model], "bound process (stages, vLLM front-end)")
    if proc.returncode != 0:
        raise SystemExit(f"the bound failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall_s": round(wall, 2), "cpu_s": cpu, **result}


def compare(b: dict, p: dict) -> dict:
    """Where the pipeline's extra time goes, against the bound."""
    m = p["manifest"]
    t = m["timing"]
    (engine,) = t["engines"].values()
    fixed_p = p["wall_s"] - t["engine_startup_s"] - t["streaming_s"]
    fixed_b = b["wall_s"] - b["engine_startup_s"] - b["engine_s"]
    return {
        "images": m["rows"]["ok"],
        "bound_s": b["wall_s"], "pipeline_s": p["wall_s"],
        "ratio": round(p["wall_s"] / b["wall_s"], 3),
        "steady_ratio": round(t["streaming_s"] / b["engine_s"], 3),
        "requests": {"bound": b["requests"], "pipeline": engine["requests"]},
        "split_s": {
            "fixed (imports, Ray, input pass, manifest)": [round(fixed_b, 1), round(fixed_p, 1)],
            "engine start-up": [b["engine_startup_s"], t["engine_startup_s"]],
            "engine busy": [b["engine_s"], engine["busy_s"]],
            "engine idle while streaming": [0.0, round(t["streaming_s"] - engine["busy_s"], 1)],
        },
        "cpu_s": {"bound": b["cpu_s"], "pipeline": p["cpu_s"]},
    }


def table(r: dict) -> str:
    lines = [f"{r['images']} images: bound {r['bound_s']:.1f} s, pipeline {r['pipeline_s']:.1f} s,"
             f" ratio {r['ratio']:.2f} (rows streaming vs bound stages: {r['steady_ratio']:.2f})",
             "", "| seconds | bound | pipeline | difference |", "|---|---|---|---|"]
    for name, (b, p) in r["split_s"].items():
        lines.append(f"| {name} | {b:.1f} | {p:.1f} | {p - b:+.1f} |")
    cpu = r["cpu_s"]
    lines += ["", f"CPU seconds by kind of process ({sum(cpu['bound'].values()):.0f} bound, "
              f"{sum(cpu['pipeline'].values()):.0f} pipeline):", "",
              "| process | bound | pipeline |", "|---|---|---|"]
    for kind in dict.fromkeys([*cpu["bound"], *cpu["pipeline"]]):
        lines.append(f"| {kind} | {cpu['bound'].get(kind, 0.0):.1f} | "
                     f"{cpu['pipeline'].get(kind, 0.0):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--model", help="Model for both roles (default: the smoke model).")
    parser.add_argument("--out", help="Folder for images, outputs and results.")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        help="A pipeline setting (repeatable); the bound is unchanged.")
    parser.add_argument("--bound-only", metavar="LISTING", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bound_only:
        print(json.dumps(bound(Path(args.bound_only), args.model)))
        return
    model = model_path(args.model)
    root = Path(args.out or tempfile.mkdtemp(prefix="scalecap-bench-"))
    listing = write_images(args.images, root / "images")
    b = timed_bound(listing, model)
    print(f"bound: {b}", file=sys.stderr)
    p = run_pipeline(listing, root / "pipeline", model, args.settings)
    result = compare(b, p)
    result["bound"], result["pipeline_timing"] = b, p["manifest"]["timing"]
    result["settings"] = args.settings
    save(result, root / "engine_bound.json")
    print(table(result))


if __name__ == "__main__":
    main()
