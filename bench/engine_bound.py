"""Benchmark 1: the pipeline against the engine-only bound.

The bound runs the ScaleCap stages in one process, with no Ray: one vLLM engine, every
image's requests of a stage sent in one call (the largest batches the engine can get),
stage after stage.  The pipeline is `scalecap-ray run` on the same images and model.
Both are timed from process start to exit; the pipeline's manifest says where its time
went (engine start-up, streaming, engine busy time), and the difference is split into
fixed costs, engine start-up, engine work and engine idle time.  The CPU seconds of each
side's processes, by kind, show what runs beside the engine.

With `--simulated [COST_JSON]`, both sides run on the simulated engine instead
(bench/simengine.py, `--factor` times slower than the cost model, by default
bench/reference_cost.json): an engine that computes without taking the host's CPU, as a
GPU does.  That separates what the pipeline itself costs (batching, streaming, idle
engine between batches) from the CPU the real CPU engine loses to Ray's processes on a
small machine.  The pipeline is then the same job as `scalecap-ray run` with the
simulated engine (bench/simulated_run.py); both sides are still timed from process start
to exit.

With `--ray-floor`, a third side runs between the two: Ray without Ray Data
(bench/ray_floor.py), the job's engine actors fed by one thread per stage in the driver.
What it adds to the bound is Ray's and the engine actor's share of the difference; what
the pipeline adds to it, Ray Data's (its executor, stage actors and tasks).

    .venv/bin/python bench/engine_bound.py [--images 200] [--model PATH] [--out DIR]
        [--set key=value ...]   (pipeline settings, e.g. stages.answer.concurrency=2)
        [--simulated [COST_JSON] [--factor 10]] [--ray-floor]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import model_path, plan_and_rows, run_measured, run_pipeline, run_stages, save
from images import write_images
from scaling import simulated
from simengine import REFERENCE_COST, CostModel, SimulatedEngine


def bound(listing: Path, model: str) -> dict:
    """The stages on an in-process vLLM engine (no Ray)."""
    from scalecap_ray.engine.vllm_engine import LocalEngine

    plan, table = plan_and_rows(listing, model)
    clock = time.perf_counter()
    with LocalEngine(plan.engines["vlm"][1].engine_config()) as engine:
        startup = time.perf_counter() - clock
        return {"engine_startup_s": round(startup, 3), **run_stages(plan, table, engine)[0]}


class SyncSimulated:
    """The simulated engine behind the synchronous `chat` the stages call, on an event loop
    of this thread (its engine loop lives on that loop between calls)."""

    def __init__(self, engine: SimulatedEngine):
        self.engine, self.loop = engine, asyncio.new_event_loop()

    def chat(self, requests, sampling):
        return self.loop.run_until_complete(self.engine.chat(requests, sampling))

    def close(self) -> None:
        """Stop the engine loop (it waits for work forever) and close the event loop."""
        for task in asyncio.all_tasks(self.loop):
            task.cancel()
            self.loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        self.loop.close()


def simulated_bound(listing: Path, model: str, cost: CostModel) -> dict:
    """The stages on an in-process simulated engine (no Ray), which starts at once."""
    plan, table = plan_and_rows(listing, model)
    engine = SyncSimulated(SimulatedEngine(plan.engines["vlm"][1].engine_config(), cost))
    try:
        return {"engine_startup_s": 0.0, **run_stages(plan, table, engine)[0]}
    finally:
        engine.close()


def timed(args: list[str], root_kind: str, side: str) -> dict:
    """A side's script in a fresh process, timed from its start like the pipeline: its
    JSON result line plus the process's wall time and CPU seconds by kind."""
    proc, wall, cpu = run_measured([sys.executable, *args], root_kind)
    if proc.returncode != 0:
        raise SystemExit(f"{side} failed:\n{proc.stderr[-3000:]}")
    return {"wall_s": round(wall, 2), "cpu_s": cpu,
            **json.loads(proc.stdout.strip().splitlines()[-1])}


def timed_bound(listing: Path, model: str, simulated: list[str]) -> dict:
    """`bound` (or `simulated_bound`) in a fresh process."""
    return timed([__file__, "--bound-only", str(listing), "--model", model, *simulated],
                 "bound process (stages, engine front-end)", "the bound")


def timed_floor(listing: Path, model: str, simulated: list[str], settings: list[str]) -> dict:
    """bench/ray_floor.py in a fresh process."""
    sets = [arg for s in settings for arg in ("--set", s)]
    return timed([str(Path(__file__).parent / "ray_floor.py"), str(listing), model,
                  *simulated, *sets], "driver", "Ray without Ray Data")


def split(wall: float, startup: float, streaming: float, busy: float) -> dict:
    """A side's wall time by where it went; `streaming` is from the engine being up to
    the last row (the bound's stage loop, whose engine is never idle)."""
    return {"fixed (imports, Ray, input pass, manifest)": round(wall - startup - streaming, 1),
            "engine start-up": startup,
            "engine busy": busy,
            "engine idle while streaming": round(streaming - busy, 1)}


def floor_split(b: dict, f: dict) -> dict:
    """The Ray-without-Ray-Data side against the bound, split as `compare` splits the
    pipeline."""
    return {"wall_s": f["wall_s"], "ratio": round(f["wall_s"] / b["wall_s"], 3),
            "requests": f["requests"], "ok": f["ok"],
            "split_s": split(f["wall_s"], f["engine_startup_s"], f["streaming_s"], f["busy_s"]),
            "cpu_s": f["cpu_s"]}


def simulated_pipeline(listing: Path, out: Path, cost: str, factor: float,
                       settings: list[str]) -> dict:
    """The whole job on the simulated engine in a fresh process (imports, Ray's start,
    `run_plan`; no memory sampling), shaped like `run_pipeline`'s result."""
    run = simulated(listing, out, Path(cost), factor, settings, memory=False)
    return {"wall_s": run["process_s"], "cpu_s": run["cpu_s"],
            "manifest": {"rows": run["rows"], "timing": run["timing"]}}


def compare(b: dict, p: dict) -> dict:
    """Where the pipeline's extra time goes, against the bound."""
    m = p["manifest"]
    t = m["timing"]
    (engine,) = t["engines"].values()
    bound_split = split(b["wall_s"], b["engine_startup_s"], b["engine_s"], b["engine_s"])
    pipeline_split = split(p["wall_s"], t["engine_startup_s"], t["streaming_s"],
                           engine["busy_s"])
    idle = t["streaming_s"] - engine["busy_s"]
    # The engine's clock starts when it is up, which can be before the rows start (an
    # engine that loads fast is up before the pass over the ids ends): only the idle time
    # after the rows started belongs to the streaming.
    early = max(0.0, engine["up_s"] - t["streaming_s"])
    before, after = engine["idle_before_first_s"] - early, engine["idle_after_last_s"]
    return {
        "images": m["rows"]["ok"],
        "bound_s": b["wall_s"], "pipeline_s": p["wall_s"],
        "ratio": round(p["wall_s"] / b["wall_s"], 3),
        "steady_ratio": round(t["streaming_s"] / b["engine_s"], 3),
        "requests": {"bound": b["requests"], "pipeline": engine["requests"]},
        "split_s": {k: [bound_split[k], pipeline_split[k]] for k in bound_split},
        # When the pipeline's engine idled: rows on their way to it, between calls, or
        # the run draining after its last call.
        "engine_idle_s": {"before the first request": round(before, 1),
                          "between requests": round(idle - before - after, 1),
                          "after the last request": round(after, 1)},
        "cpu_s": {"bound": b["cpu_s"], "pipeline": p["cpu_s"]},
    }


def table(r: dict) -> str:
    floor = r.get("ray_floor")
    lines = [f"{r['images']} images: bound {r['bound_s']:.1f} s, pipeline {r['pipeline_s']:.1f} s,"
             f" ratio {r['ratio']:.2f} (rows streaming vs bound stages: {r['steady_ratio']:.2f})"]
    if floor:
        lines.append(f"Ray without Ray Data: {floor['wall_s']:.1f} s, ratio {floor['ratio']:.2f}")
    mid = " Ray, no Ray Data |" if floor else ""
    lines += ["", f"| seconds | bound |{mid} pipeline | difference |",
              "|---|---|---|---|" + ("---|" if floor else "")]
    for name, (b, p) in r["split_s"].items():
        cell = f" {floor['split_s'][name]:.1f} |" if floor else ""
        lines.append(f"| {name} | {b:.1f} |{cell} {p:.1f} | {p - b:+.1f} |")
    lines += ["", "Engine idle while streaming: " + ", ".join(
        f"{s:.1f} s {when}" for when, s in r["engine_idle_s"].items()) + "."]
    sides = {"bound": r["cpu_s"]["bound"], **({"Ray, no Ray Data": floor["cpu_s"]} if floor
                                              else {}), "pipeline": r["cpu_s"]["pipeline"]}
    totals = ", ".join(f"{sum(cpu.values()):.0f} {side}" for side, cpu in sides.items())
    lines += ["", f"CPU seconds by kind of process ({totals}):", "",
              "| process | " + " | ".join(sides) + " |", "|---|" + "---|" * len(sides)]
    for kind in dict.fromkeys(k for cpu in sides.values() for k in cpu):
        lines.append(f"| {kind} | " + " | ".join(f"{cpu.get(kind, 0.0):.1f}"
                                                 for cpu in sides.values()) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--model", help="Model for both roles (default: the smoke model).")
    parser.add_argument("--out", help="Folder for images, outputs and results.")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        help="A pipeline setting (repeatable; Ray without Ray Data gets it "
                             "too); the bound is unchanged.")
    parser.add_argument("--simulated", metavar="COST_JSON", nargs="?",
                        const=str(REFERENCE_COST),
                        help="Both sides on the simulated engine instead of vLLM, with this "
                             "cost model (a bench/calibrate.py output; default "
                             "bench/reference_cost.json).")
    parser.add_argument("--factor", type=float, default=10.0,
                        help="With --simulated: how many times slower than the cost model.")
    parser.add_argument("--ray-floor", action="store_true",
                        help="Also run Ray without Ray Data (bench/ray_floor.py) between the "
                             "bound and the pipeline.")
    parser.add_argument("--bound-only", metavar="LISTING", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bound_only:
        listing = Path(args.bound_only)
        if args.simulated:
            cost = CostModel.load(args.simulated).scaled(args.factor)
            print(json.dumps(simulated_bound(listing, args.model, cost)))
        else:
            print(json.dumps(bound(listing, args.model)))
        return
    model = model_path(args.model)
    root = Path(args.out or tempfile.mkdtemp(prefix="scalecap-bench-"))
    listing = write_images(args.images, root / "images")
    cost = str(Path(args.simulated).resolve()) if args.simulated else None
    sim = ["--simulated", cost, "--factor", str(args.factor)] if cost else []
    b = timed_bound(listing, model, sim)
    print(f"bound: {b}", file=sys.stderr)
    f = timed_floor(listing, model, sim, args.settings) if args.ray_floor else None
    if f:
        print(f"Ray without Ray Data: {f}", file=sys.stderr)
    p = (simulated_pipeline(listing, root / "pipeline", cost, args.factor, args.settings)
         if cost else run_pipeline(listing, root / "pipeline", model, args.settings))
    result = compare(b, p)
    result["bound"], result["pipeline_timing"] = b, p["manifest"]["timing"]
    result["settings"] = args.settings
    if f:
        result["ray_floor"] = floor_split(b, f)
    if cost:
        result["simulated"] = {"cost": cost, "factor": args.factor}
    save(result, root / ("engine_bound_simulated.json" if cost else "engine_bound.json"))
    print(table(result))


if __name__ == "__main__":
    main()
