"""Engines as Ray actors, shared by every stage that uses the same model.

Why actors of our own rather than one engine inside each stage's `map_batches` actor: the
ScaleCap stages alternate between the VLM and the LLM (caption, verify, questions, answer,
filter, integrate), so fusing same-model stages into one actor is impossible, and an
engine per stage would load each model several times onto the same GPU.  Here each model
runs in `replicas` long-lived actors (vLLM's AsyncLLM, so requests from every stage are
batched together); stage actors are light clients that find them by name.  Each image is
routed to the same replica in every stage, so later stages reuse the image prefix that
earlier stages left in that replica's cache.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from scalecap_ray.engine.config import EngineConfig
from scalecap_ray.engine.types import ChatEngine, ChatRequest, ChatResult, Sampling

logger = logging.getLogger(__name__)


ENGINE_RESTARTS = 3


class EngineActor:
    """Hosts one `VLLMEngine`; wrapped with `ray.remote` by `EnginePool.start`."""

    def __init__(self, cfg: EngineConfig):
        from scalecap_ray.engine.vllm_engine import VLLMEngine

        # A failure to start (bad model path, no memory) is kept and raised by the calls:
        # raised here, it would make Ray restart the actor and load the model again.
        self.start_error: Exception | None = None
        try:
            self.engine = VLLMEngine(cfg)
        except Exception as exc:
            self.start_error = exc

    def _check_started(self) -> None:
        if self.start_error is not None:
            raise RuntimeError(f"the engine did not start: {self.start_error}") \
                from self.start_error

    async def chat(self, requests: Sequence[ChatRequest], sampling: Sampling) -> list[ChatResult]:
        self._check_started()
        return await self.engine.chat(requests, sampling)

    async def info(self) -> dict:
        self._check_started()
        return {"model": self.engine.cfg.model, "max_model_len": self.engine.max_model_len,
                "engine_args": self.engine.engine_args}

    async def shutdown(self) -> None:
        if self.start_error is None:
            self.engine.shutdown()


@dataclass(frozen=True)
class EngineSpec:
    """Where a model's engine replicas live: the actor names, known before any starts."""

    role: str
    names: tuple[str, ...]
    namespace: str | None = None


@dataclass(frozen=True)
class EnginePlacement:
    """Ray resources of one engine replica."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    accelerator_type: str | None = None


class EnginePool:
    """Starts and stops the replicas of one model (a driver-side object)."""

    def __init__(self, spec: EngineSpec, cfg: EngineConfig, placement: EnginePlacement):
        self.spec, self.cfg, self.placement = spec, cfg, placement
        self._actors: list = []

    def start(self, timeout_s: float | None = None) -> list[dict]:
        """Start every replica and wait until each has loaded its model."""
        import ray

        options = {
            "num_cpus": self.placement.num_cpus,
            "num_gpus": self.placement.num_gpus,
            # An engine that dies mid-run is restarted by Ray, and calls that were in
            # flight are sent again to the new one (they are idempotent: same requests,
            # same greedy answers), so the batch survives.
            "max_restarts": ENGINE_RESTARTS,
            "max_task_retries": ENGINE_RESTARTS,
        }
        if self.placement.accelerator_type:
            options["accelerator_type"] = self.placement.accelerator_type
        actor_cls = ray.remote(EngineActor)
        for name in self.spec.names:
            self._actors.append(
                actor_cls.options(name=name, namespace=self.spec.namespace, **options)
                .remote(self.cfg)
            )
        infos = ray.get([a.info.remote() for a in self._actors], timeout=timeout_s)
        logger.info("%s engine ready: %d replica(s) of %s", self.spec.role, len(infos),
                    self.cfg.model)
        return infos

    def shutdown(self) -> None:
        """Stop the engines (their worker processes too) and release the actors."""
        import ray

        actors, self._actors = self._actors, []
        try:
            ray.get([a.shutdown.remote() for a in actors], timeout=60)
        finally:
            for actor in actors:
                ray.kill(actor)


def route(key: str | None, index: int, replicas: int) -> int:
    """The replica for a request: by its image key (stable across stages and processes),
    else by position."""
    if replicas == 1:
        return 0
    if key is None:
        return index % replicas
    return zlib.crc32(key.encode()) % replicas


class RemoteEngine:
    """A `ChatEngine` backed by the replicas of an `EngineSpec` (used inside stage actors)."""

    def __init__(self, spec: EngineSpec):
        import ray

        self.spec = spec
        self._handles = [ray.get_actor(n, namespace=spec.namespace) for n in spec.names]

    def chat(self, requests: Sequence[ChatRequest], sampling: Sampling) -> list[ChatResult]:
        import ray

        groups: dict[int, list[int]] = {}
        for i, req in enumerate(requests):
            groups.setdefault(route(req.image_key, i, len(self._handles)), []).append(i)
        refs = {r: self._handles[r].chat.remote([requests[i] for i in idx], sampling)
                for r, idx in groups.items()}
        results: list[ChatResult | None] = [None] * len(requests)
        for r, idx in groups.items():
            for i, res in zip(idx, ray.get(refs[r]), strict=True):
                results[i] = res
        return results  # type: ignore[return-value]


def connect(engine: EngineSpec | ChatEngine) -> ChatEngine:
    """The engine a stage talks to: remote replicas for a spec, or an engine object as is
    (tests hand stages a scripted engine this way)."""
    return RemoteEngine(engine) if isinstance(engine, EngineSpec) else engine
