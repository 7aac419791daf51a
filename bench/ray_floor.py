"""Benchmark 1's middle side: Ray without Ray Data.

The job's engines as the pipeline runs them (a local Ray, the `EnginePool` actors, the
stages calling them through `RemoteEngine`), but the rows streamed through the stages by
one thread per stage in this process instead of Ray Data's actors and tasks: blocks of
the pipeline's block size, each stage taking them in order as a stage actor does.  Set
between the bound (no Ray) and the pipeline, it splits the pipeline's extra time into
what Ray and an engine actor cost and what Ray Data's executor, stage actors and tasks
add.  Run as a script it prints one JSON line:

    python bench/ray_floor.py LISTING MODEL [--simulated COST_JSON --factor F]
        [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from common import outcome, plan_and_rows, stage_instance


def stream(stages: Sequence[Callable[[Any], Any]], blocks: Sequence[Any]
           ) -> tuple[list[Any], list[float]]:
    """`blocks` through `stages`, one thread per stage, each taking its blocks in order
    while the others work on earlier or later ones: the blocks out, in order, and each
    stage's seconds (blocks are pyarrow Tables here; `stream` only hands them on).  The
    first stage error is raised once every thread has stopped."""
    queues: list[queue.Queue] = [queue.Queue() for _ in range(len(stages) + 1)]
    seconds = [0.0] * len(stages)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            while (batch := queues[i].get()) is not None:
                start = time.perf_counter()
                out = stages[i](batch)
                seconds[i] += time.perf_counter() - start
                queues[i + 1].put(out)
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)
            while queues[i].get() is not None:  # let the stages before this one finish
                pass
        finally:
            queues[i + 1].put(None)

    threads = [threading.Thread(target=work, args=(i,), daemon=True)
               for i in range(len(stages))]
    for t in threads:
        t.start()
    for block in blocks:
        queues[0].put(block)
    queues[0].put(None)
    out = []
    while (batch := queues[-1].get()) is not None:
        out.append(batch)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out, seconds


def ray_floor(listing: Path, model: str, cost=None, settings: Sequence[str] = ()) -> dict:
    """The stages streamed from this process to the job's engine actors in a fresh local
    Ray (on simulated GPUs with the simulated engine when `cost` is given), with the
    pipeline's `settings`: engine start-up from launch, streaming time, each stage's
    seconds, the engine's busy time, requests, rows ok."""
    import ray

    from scalecap_ray.runner import check_capabilities, check_cluster, engine_pools

    plan, table = plan_and_rows(listing, model, settings)
    factory = None
    if cost is None:
        ray.init()  # as `scalecap-ray run` starts a local Ray
    else:
        from simengine import SimulatedEngine
        from simulated_run import init_simulated_ray

        factory = partial(SimulatedEngine, cost=cost, prompts=plan.config.prompts)
        init_simulated_ray()
    pools = engine_pools(plan, check_cluster(plan, None), factory)
    try:
        launched = time.perf_counter()
        caps = {pool.spec.names: pool.start()[0]["capabilities"] for pool in pools}
        ready = time.perf_counter()
        plan = check_capabilities(plan, caps)
        stages = [stage_instance(s, plan.engines[s.role][0] if s.role else None)
                  for s in plan.stages]
        size = min(s.settings.batch_size for s in plan.stages if s.role is not None)
        blocks = [table.slice(i, size) for i in range(0, table.num_rows, size)]
        out, seconds = stream(stages, blocks)
        streaming = time.perf_counter() - ready
        stats = [replica for pool in pools for replica in pool.stats()]
    finally:
        for pool in pools:
            pool.shutdown()
        ray.shutdown()
    return {"engine_startup_s": round(ready - launched, 3),
            "streaming_s": round(streaming, 3),
            "stages_s": {s.name: round(t, 3) for s, t in zip(plan.stages, seconds, strict=True)},
            "busy_s": round(sum(s["busy_s"] for s in stats), 3),
            "idle_before_first_s": round(sum(s["idle_before_first_s"] for s in stats), 3),
            **outcome(*out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("listing")
    parser.add_argument("model")
    parser.add_argument("--simulated", metavar="COST_JSON",
                        help="The simulated engine with this cost model instead of vLLM.")
    parser.add_argument("--factor", type=float, default=10.0,
                        help="With --simulated: how many times slower than the cost model.")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        help="A pipeline setting (repeatable), as for the pipeline.")
    args = parser.parse_args()
    cost = None
    if args.simulated:
        from simengine import CostModel

        cost = CostModel.load(args.simulated).scaled(args.factor)
    print(json.dumps(ray_floor(Path(args.listing), args.model, cost, args.settings)))


if __name__ == "__main__":
    main()
