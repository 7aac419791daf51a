"""A stand-in for vLLM inside engine actors, for placement tests on simulated GPUs
(`ray.init(num_gpus=8)` schedules GPU resources without any GPU being there).

`StandInEngine` records where Ray put it (GPU ids, placement group and its bundles) and,
in a placement group, starts one task per GPU bundle the way vLLM's Ray executor starts
its workers; it answers chats with fixed, parseable text.  Run as a module, it plays one
scenario in a fresh Ray and prints the findings as JSON (tests run it in a subprocess,
because the test process already has its own Ray):

    python -m tests.standin pool|elastic|run|reject|broken [args]
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from scalecap_ray.engine.config import EngineConfig
from scalecap_ray.engine.types import ChatRequest, ChatResult, Sampling, TokenLogprob

REPO = Path(__file__).resolve().parents[1]
TEXT = "A red cup stands on the table. Describe more details about the cup."


class StandInEngine:
    def __init__(self, cfg: EngineConfig):
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self.cfg, self.max_model_len = cfg, 4096
        group = ray.util.get_current_placement_group()
        where = {"model": cfg.model, "gpu_ids": ray.get_gpu_ids(),
                 "node": ray.get_runtime_context().get_node_id(),
                 "bundles": group.bundle_specs if group else None}
        if group is not None:
            @ray.remote(num_cpus=0, num_gpus=1)
            def rank() -> list:
                return ray.get_gpu_ids()

            where["rank_gpu_ids"] = ray.get([
                rank.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
                    group, placement_group_bundle_index=i)).remote()
                for i in range(len(group.bundle_specs))])
        self.engine_args = where

    async def capabilities(self) -> dict[str, bool]:
        return {"prompt_logprobs": True, "logprobs": True}

    async def chat(self, requests: Sequence[ChatRequest], sampling: Sampling
                   ) -> list[ChatResult]:
        return [self._one(r, sampling) for r in requests]

    @staticmethod
    def _one(req: ChatRequest, sampling: Sampling) -> ChatResult:
        if req.assistant is not None:  # scoring: every word likelier with the image
            p = 0.9 if req.image is not None else 0.3
            words = [i for i, ch in enumerate(req.assistant) if ch != " "]
            return ChatResult(prompt_tokens=20, assistant_logprobs=[
                TokenLogprob(i, i + 1, math.log(p)) for i in words])
        if sampling.first_token_logprobs:
            return ChatResult(prompt_tokens=20, output_tokens=1, first_token_logprobs={
                k: math.log(0.8 if k.strip().lower() == "yes" else 0.1)
                for k in sampling.first_token_logprobs})
        return ChatResult(text=TEXT, prompt_tokens=20, output_tokens=12)

    def shutdown(self) -> None:
        pass


class BrokenEngine:
    """Fails to load its model, as vLLM does on a bad model path."""

    def __init__(self, cfg: EngineConfig):
        raise OSError(f"no model at {cfg.model}")


def _init_gpu_ray(num_cpus: int = 8) -> None:
    import ray

    # The dashboard serves the state API that lists the engine actors afterwards.
    ray.init(num_cpus=num_cpus, num_gpus=8, resources={"accelerator_type:H100": 1},
             include_dashboard=True, log_to_driver=False)


def _plan(overrides: list[str]):
    from scalecap_ray.config import load_config
    from scalecap_ray.pipeline import plan_scalecap_job

    return plan_scalecap_job(load_config(REPO / "cluster" / "node-8gpu.yaml", overrides))


def _engine_actors() -> list[dict]:
    import ray
    from ray.util.state import list_actors

    address = ray.get_runtime_context().gcs_address
    return [{"name": a.name, "state": a.state} for a in list_actors(
        address=address, filters=[("class_name", "=", "EngineActor")])]


def pool(overrides: list[str], output: str | None = None) -> dict:
    """Start the engines of the 8-GPU config; report where each replica landed."""
    import ray

    from scalecap_ray.engine.pool import RemoteEngine
    from scalecap_ray.runner import check_cluster, engine_pools

    _init_gpu_ray()
    plan = _plan(overrides)
    pools = engine_pools(plan, check_cluster(plan), StandInEngine)
    try:
        found = {p.spec.role: [i["engine_args"] for i in p.start(timeout_s=120)] for p in pools}
        remote_ready = {p.spec.role: len(RemoteEngine(p.spec)._ready) for p in pools}
    finally:
        for p in pools:
            p.shutdown()
    groups = ray.util.placement_group_table()
    return {"replicas": found, "remote_ready": remote_ready,
            "groups_left": [g for g in groups.values() if g["state"] != "REMOVED"]}


def elastic(overrides: list[str], output: str | None = None) -> dict:
    """(min, max) replicas where only some fit: start with the minimum, use what fits."""
    import time

    from scalecap_ray.engine.pool import RemoteEngine
    from scalecap_ray.runner import check_cluster, engine_pools

    _init_gpu_ray()
    plan = _plan(overrides)
    placement = check_cluster(plan)
    (vlm_pool,) = engine_pools(plan, placement, StandInEngine)
    try:
        started = len(vlm_pool.start(timeout_s=120))
        remote = RemoteEngine(vlm_pool.spec)
        deadline = time.monotonic() + 60
        while len(remote._ready) < 8 and time.monotonic() < deadline:
            time.sleep(0.5)
            remote._refresh()
        answers = remote.chat([ChatRequest("hi", image_key=f"k{i}") for i in range(16)],
                              Sampling())
        ready = len(remote._ready)
    finally:
        vlm_pool.shutdown()
    return {"started": started, "ready": ready, "answers": [a.text for a in answers],
            "notes": placement.notes, "actors": _engine_actors()}


def run(overrides: list[str], output: str) -> dict:
    """The whole ScaleCap job, engines as stand-ins, on the simulated 8-GPU node."""
    from scalecap_ray.runner import run_plan

    _init_gpu_ray()
    result = run_plan(_plan(overrides), str(REPO / "examples" / "images.jsonl"), output,
                      engine_factory=StandInEngine)
    return {"rows": result.rows_written, "actors": _engine_actors()}


def _failing_run(overrides: list[str], output: str, factory, expected: type[Exception]
                 ) -> dict:
    """A run expected to raise `expected`: its error, the engine actors and the files in
    the output folder afterwards."""
    from scalecap_ray.runner import run_plan

    _init_gpu_ray()
    try:
        run_plan(_plan(overrides), str(REPO / "examples" / "images.jsonl"), output,
                 engine_factory=factory)
    except expected as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "actors": _engine_actors(),
                "output_files": sorted(p.name for p in Path(output).glob("*"))}
    return {"error": None}


def broken(overrides: list[str], output: str) -> dict:
    """A run whose engines fail to start."""
    return _failing_run(overrides, output, BrokenEngine, Exception)


def reject(overrides: list[str], output: str) -> dict:
    """A plan the node cannot hold: refused before any engine starts."""
    from scalecap_ray.resources.placement import PlacementError

    return _failing_run(overrides, output, StandInEngine, PlacementError)


SCENARIOS = {"pool": pool, "elastic": elastic, "run": run, "reject": reject,
             "broken": broken}

if __name__ == "__main__":
    name, overrides, *output = sys.argv[1:]
    result = SCENARIOS[name](json.loads(overrides), *output)
    print("RESULT " + json.dumps(result, default=str))
