"""One pipeline run on simulated GPUs with the simulated engine (bench/simengine.py), in
a fresh Ray: what the scaling and memory benchmarks repeat.  Run as a script it prints
the run's timing (and the peak memory of its processes) as one JSON line:

    python bench/simulated_run.py LISTING OUT COST_JSON FACTOR [--llm-factor F]
        [--set key=value ...] [--no-memory]

With `--llm-factor` the LLM is an engine of its own (seed 1), F times slower than the
cost model, while the VLM is FACTOR times slower.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from common import Sampler, model_path
from simengine import CostModel

SIMULATED_GPUS = 8


class PeakMemory(Sampler):
    """Samples the resident memory of this process and of every other process of the
    user's Ray session (workers, actors) twice a second; keeps each one's peak by its
    process title (`ray::MapWorker(MapBatches(AnswerStage))`, `ray::EngineActor`, ...)."""

    def __init__(self, interval_s: float = 0.5):
        super().__init__(interval_s)
        self.peaks: dict[str, int] = {}

    def _sample(self) -> None:
        me = psutil.Process()
        for proc in [me, *psutil.process_iter()]:
            try:
                name = "driver" if proc.pid == me.pid else " ".join(proc.cmdline())[:80]
                if name != "driver" and not name.startswith("ray::"):
                    continue
                rss = proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            key = f"{name} [{proc.pid}]"
            self.peaks[key] = max(self.peaks.get(key, 0), rss)

    def by_role(self) -> dict[str, float]:
        """Peak MiB per kind of process (the largest of each kind)."""
        out: dict[str, float] = {}
        for key, rss in self.peaks.items():
            # "ray::scalecap-x-vlm-0:EngineActor.chat" -> "EngineActor": the title names
            # the method running when sampled; the process is the same.
            role = re.sub(r"^ray::(\S+?:)?", "", key.rsplit(" [", 1)[0].strip())
            role = re.sub(r"\.\w+$", "", role)
            out[role] = max(out.get(role, 0.0), round(rss / 2**20, 1))
        return out


def init_simulated_ray() -> None:
    """A local Ray with the simulated GPUs.  Logical CPUs: the simulated engines use none,
    but on a GPU cluster each replica reserves one, as a real one would."""
    import ray

    ray.init(num_cpus=16, num_gpus=SIMULATED_GPUS, include_dashboard=False,
             log_to_driver=False)


def run(listing: str, out: str, cost: CostModel, overrides: list[str],
        llm_cost: CostModel | None = None, memory: bool = True) -> dict:
    import ray
    from simengine import SimulatedEngine, engine_by_seed

    from scalecap_ray.config import load_config
    from scalecap_ray.pipeline import plan_scalecap_job
    from scalecap_ray.runner import run_plan

    model = model_path(None)
    separate = ["llm.seed=1"] if llm_cost is not None else []
    cfg = load_config(None, [f"vlm.model={model}", f"llm.model={model}", *separate,
                             *overrides])
    factory = (partial(engine_by_seed, costs={0: cost, 1: llm_cost}, prompts=cfg.prompts)
               if llm_cost is not None else
               partial(SimulatedEngine, cost=cost, prompts=cfg.prompts))
    init_simulated_ray()
    try:
        # The sampler walks every process twice a second: CPU a timing comparison on a
        # small machine should not pay for when it does not report memory.
        with PeakMemory() if memory else nullcontext() as sampler:
            start = time.perf_counter()
            result = run_plan(plan_scalecap_job(cfg), listing, out, progress=False,
                              engine_factory=factory)
            wall = time.perf_counter() - start
    finally:
        ray.shutdown()
    m = result.manifest
    timing = m["timing"]
    return {"rows": m["rows"], "wall_s": round(wall, 2), "timing": timing,
            "images_per_s": round(m["rows"]["written"] / timing["streaming_s"], 3),
            "peak_mib": sampler.by_role() if memory else {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("listing")
    parser.add_argument("out")
    parser.add_argument("cost", help="cost.json from bench/calibrate.py")
    parser.add_argument("factor", type=float,
                        help="How many times slower than the cost model.")
    parser.add_argument("--llm-factor", type=float, help="A separate LLM engine this many "
                        "times slower than the cost model.")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="Do not sample the processes' memory.")
    args = parser.parse_args()
    cost = CostModel.load(args.cost)
    llm = cost.scaled(args.llm_factor) if args.llm_factor else None
    print(json.dumps(run(args.listing, args.out, cost.scaled(args.factor),
                         args.overrides, llm, args.memory)))


if __name__ == "__main__":
    main()
