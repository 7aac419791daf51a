"""Benchmarks 3 and 4 on simulated GPUs: throughput at 1, 2, 4 and 8 engine replicas, and
peak memory for a small and a ten times larger input.

Each run is a fresh Ray with 8 simulated GPUs (`ray.init(num_gpus=8)`) and the simulated
engine (bench/simengine.py), whose latency follows a cost model bench/calibrate.py
fitted on the real CPU engine (by default the kept one, bench/reference_cost.json), made
`--factor` times slower (the calibrated smoke model answers an image in about a tenth
of a second; a 7B model on one GPU takes about a second).  Scaling is weak: N =
images-per-replica x replicas, batches of 4 x replicas images (so every replica gets
the same share of each batch), one actor per stage.

    .venv/bin/python bench/scaling.py [--cost cost.json] [--replicas 1 2 4 8]
        [--per-replica 60] [--factor 10] [--memory 100 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, run_measured, save
from images import write_images
from simengine import REFERENCE_COST

MODEL_STAGES = ("caption", "verify", "questions", "answer", "integrate")


def simulated(listing: Path, out: Path, cost: Path, factor: float,
              overrides: list[str], llm_factor: float | None = None,
              memory: bool = True) -> dict:
    """One run on simulated GPUs in a fresh process (bench/simulated_run.py): its result
    line, plus the process's wall time (`process_s`) and CPU seconds by kind (`cpu_s`)."""
    args = [sys.executable, str(REPO / "bench" / "simulated_run.py"), str(listing), str(out),
            str(cost), str(factor)]
    if llm_factor is not None:
        args += ["--llm-factor", str(llm_factor)]
    if not memory:
        args.append("--no-memory")
    for o in overrides:
        args += ["--set", o]
    proc, wall, cpu = run_measured(args, "driver")
    if proc.returncode != 0:
        raise SystemExit(f"simulated run failed:\n{proc.stderr[-3000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "process_s": round(wall, 2),
            "cpu_s": cpu}


def scaling(root: Path, cost: Path, replicas: list[int], per_replica: int,
            factor: float) -> list[dict]:
    results = []
    for r in replicas:
        listing = write_images(per_replica * r, root / "images")
        batch = [f"stages.{s}.batch_size={4 * r}" for s in MODEL_STAGES]
        res = simulated(listing, root / f"scale-{r}", cost, factor,
                        [f"vlm.replicas={r}", *batch])
        (engine,) = res["timing"]["engines"].values()
        results.append({"replicas": r, "images": res["rows"]["written"],
                        "images_per_s": res["images_per_s"],
                        "busy_share": engine["busy_share"],
                        "streaming_s": res["timing"]["streaming_s"]})
        print(results[-1], file=sys.stderr)
    base = results[0]["images_per_s"] / results[0]["replicas"]
    for row in results:
        row["efficiency"] = round(row["images_per_s"] / (base * row["replicas"]), 3)
    return results


def memory(root: Path, cost: Path, sizes: list[int], factor: float) -> list[dict]:
    results = []
    for n in sizes:
        listing = write_images(n, root / "images")
        res = simulated(listing, root / f"memory-{n}", cost, factor, [])
        results.append({"images": n, "seconds": res["wall_s"], "peak_mib": res["peak_mib"]})
        print({"images": n, "seconds": res["wall_s"]}, file=sys.stderr)
    return results


def scaling_table(rows: list[dict]) -> str:
    lines = ["| replicas | images | images/s | vs replicas x 1-replica rate | engine busy |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['replicas']} | {r['images']} | {r['images_per_s']:.2f} | "
              f"{r['efficiency']:.2f} | {r['busy_share']:.0%} |" for r in rows]
    return "\n".join(lines)


def memory_table(rows: list[dict]) -> str:
    roles = sorted({k for r in rows for k in r["peak_mib"]},
                   key=lambda k: (k != "driver", k))
    lines = ["| process (peak RSS, MiB) | " + " | ".join(f"{r['images']} images"
                                                    for r in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for role in roles:
        lines.append(f"| {role} | " + " | ".join(
            f"{r['peak_mib'].get(role, 0):.0f}" for r in rows) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cost", default=str(REFERENCE_COST),
                        help="Cost model of the simulated engine: a bench/calibrate.py output "
                             "(default: bench/reference_cost.json).")
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--per-replica", type=int, default=60)
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--memory", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--memory-factor", type=float, default=1.0)
    parser.add_argument("--out", help="Folder for images, outputs and results.")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="scalecap-bench-"))
    cost = Path(args.cost).resolve()
    result: dict = {"factor": args.factor, "memory_factor": args.memory_factor}
    if args.replicas:
        result["scaling"] = scaling(root, cost, args.replicas, args.per_replica, args.factor)
        print(scaling_table(result["scaling"]))
    if args.memory:
        result["memory"] = memory(root, cost, args.memory, args.memory_factor)
        print(memory_table(result["memory"]))
    save(result, root / "scaling.json")


if __name__ == "__main__":
    main()
