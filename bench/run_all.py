"""`make bench`: every benchmark at the size recorded in docs/benchmarks.md (under 20
minutes on the 2-core CI machine), the headline figures printed, the tables and
the plot (docs/benchmarks.png) written.

    .venv/bin/python bench/run_all.py [--out bench-results] [--quick] [--simulated]
        [--calibrated]

`--simulated` adds benchmark 1 on the simulated engine at 200 images (about 5 more
minutes, so `make bench` leaves it out). The simulated engine runs on the reference cost
model (bench/reference_cost.json) unless `--calibrated` gives it the one just fitted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO
from simengine import REFERENCE_COST


def step(title: str, args: list[str], log: Path) -> str:
    start = time.perf_counter()
    # vLLM logs to standard output unless told not to set up its logging: keep the
    # printed results clean (its warnings still reach the log, through stderr).
    env = {**os.environ, "VLLM_CONFIGURE_LOGGING": "0"}
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                          env=env)
    log.write_text(proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{title} failed (log: {log}):\n{proc.stderr[-3000:]}")
    print(f"\n## {title} ({time.perf_counter() - start:.0f} s)\n\n{proc.stdout.strip()}",
          flush=True)
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench-results")
    parser.add_argument("--quick", action="store_true",
                        help="Smaller sizes (a few minutes), to check the scripts work.")
    parser.add_argument("--simulated", action="store_true",
                        help="Also benchmark 1 on the simulated engine.")
    parser.add_argument("--calibrated", action="store_true",
                        help="Simulate the engine just calibrated, not the reference one.")
    args = parser.parse_args()
    out = (REPO / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    images, per_replica, split_images, memory = ("24", "12", "48", ["20", "200"]) \
        if args.quick else ("200", "40", "200", ["100", "1000"])
    b = "bench/"
    step("1. Engine-only bound vs pipeline", [b + "engine_bound.py", "--images", images,
                                              "--out", str(out / "bound")], out / "1.log")
    step("1. Serialization along the pipeline's path",
         [b + "serialization.py", "--images", images, "--out", str(out / "serialization")],
         out / "1s.log")
    step("2. Prefix cache by layout", [b + "prefix_cache.py", "--out",
                                       str(out / "prefix_cache.json")], out / "2.log")
    step("3. Calibrating the simulated engine", [b + "calibrate.py", "--out",
                                                 str(out / "cost.json")], out / "3a.log")
    cost = str(out / "cost.json" if args.calibrated else REFERENCE_COST)
    if args.simulated:
        step("1. Engine-only bound vs pipeline on the simulated engine (leaves the CPU free)",
             [b + "engine_bound.py", "--images", images, "--simulated", cost,
              "--factor", "10", "--out", str(out / "bound-simulated")], out / "1b.log")
    step("3-4. Scaling and memory (simulated GPUs)",
         [b + "scaling.py", "--cost", cost, "--per-replica", per_replica,
          # Memory does not depend on engine speed: a fast engine keeps the step short.
          "--memory", *memory, "--memory-factor", "0.3", "--out", str(out / "scaling")],
         out / "3b.log")
    step("3. Splitting GPUs between the VLM and the LLM (simulated GPUs)",
         [b + "split.py", "--cost", cost, "--images", split_images,
          "--around", "1", "--out", str(out / "split")], out / "3c.log")
    step("5. Cost per image by mode", [b + "cost_per_mode.py", "--out",
                                       str(out / "modes")], out / "5.log")
    # Quality: held-out toy scenes through every mode; the full run rewrites docs/quality.md.
    quality = ["--images", "40"] if args.quick else ["--images", "200", "--doc",
                                                    "docs/quality.md"]
    step("6. Caption quality on the toy world",
         [b + "quality.py", *quality, "--out", str(out / "quality")], out / "6.log")
    step("Plot", [b + "plot.py", str(out)], out / "plot.log")
    ratios = [f"{json.loads((out / 'bound' / 'engine_bound.json').read_text())['ratio']:.2f} "
              "(CPU vLLM)"]
    if args.simulated:
        sim = json.loads((out / "bound-simulated" / "engine_bound_simulated.json").read_text())
        ratios.append(f"{sim['ratio']:.2f} (simulated engine)")
    print(f"\nresults in {out}; pipeline/bound ratio {', '.join(ratios)}")


if __name__ == "__main__":
    main()
