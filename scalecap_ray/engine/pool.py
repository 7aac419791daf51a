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
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scalecap_ray.engine.config import EngineConfig
from scalecap_ray.engine.types import ChatEngine, ChatRequest, ChatResult, Sampling

logger = logging.getLogger(__name__)


ENGINE_RESTARTS = 3
READY_WAIT_S = 2.0
# How long stats and shutdown wait for the replicas' answers.
STOP_TIMEOUT_S = 60.0


def _vllm_engine(cfg: EngineConfig, limiter: Any) -> Any:
    from scalecap_ray.engine.vllm_engine import VLLMEngine

    return VLLMEngine(cfg)


def _openai_engine(cfg: EngineConfig, limiter: Any) -> Any:
    from scalecap_ray.engine.openai_engine import OpenAIEngine

    return OpenAIEngine(cfg, limiter)


# Engine builders by `EngineConfig.backend`: (config, shared rate limiter) -> engine.
BACKENDS: dict[str, Callable[[EngineConfig, Any], Any]] = {
    "vllm": _vllm_engine,
    "openai": _openai_engine,
}


class EngineStartError(RuntimeError):
    """An engine replica failed to load its model (bad path, no memory, ...)."""


class BusyClock:
    """How long an engine had at least one call in flight (its busy time), since it came
    up, and when its idle time fell: waiting for the first call (rows still reaching the
    stages), after the last one (the run draining, or nothing left for this engine), or
    in between.  The run's manifest reports it, so idle engines show."""

    def __init__(self) -> None:
        self.up_at = time.monotonic()
        self.busy_s = 0.0
        self.calls = self.requests = self._inflight = 0
        self._since = 0.0
        self._first: float | None = None  # when the first call arrived
        self._last = 0.0  # when the latest call finished

    def enter(self, requests: int) -> None:
        if self._inflight == 0:
            self._since = time.monotonic()
            if self._first is None:
                self._first = self._since
        self._inflight += 1
        self.calls += 1
        self.requests += requests

    def leave(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._last = time.monotonic()
            self.busy_s += self._last - self._since

    def snapshot(self) -> dict[str, float]:
        now = time.monotonic()
        busy = self.busy_s + (now - self._since if self._inflight else 0.0)
        if self._first is None:  # never called: all of its up time was waiting
            before, after = now - self.up_at, 0.0
        else:
            before = self._first - self.up_at
            after = 0.0 if self._inflight else now - self._last
        return {"up_s": now - self.up_at, "busy_s": busy, "idle_before_first_s": before,
                "idle_after_last_s": after, "calls": self.calls, "requests": self.requests}


class EngineActor:
    """Hosts one engine (by the config's backend, unless a factory is given); wrapped with
    `ray.remote` by `EnginePool.start`."""

    def __init__(self, cfg: EngineConfig, factory: Callable[[EngineConfig], Any] | None = None,
                 limiter: Any = None):
        # A failure to start (bad model path, no memory) is kept and raised by the calls:
        # raised here, it would make Ray restart the actor and load the model again.
        self.start_error: Exception | None = None
        try:
            self.engine = factory(cfg) if factory else BACKENDS[cfg.backend](cfg, limiter)
        except Exception as exc:
            self.start_error = exc
        self.clock = BusyClock()

    def _check_started(self) -> None:
        if self.start_error is not None:
            raise EngineStartError(f"the engine did not start: {self.start_error}") \
                from self.start_error

    async def chat(self, requests: Sequence[ChatRequest], sampling: Sampling) -> list[ChatResult]:
        self._check_started()
        self.clock.enter(len(requests))
        try:
            return await self.engine.chat(requests, sampling)
        finally:
            self.clock.leave()

    async def stats(self) -> dict[str, float]:
        return self.clock.snapshot()

    async def info(self) -> dict:
        self._check_started()
        return {"model": self.engine.cfg.model, "max_model_len": self.engine.max_model_len,
                "engine_args": self.engine.engine_args,
                "capabilities": await self.engine.capabilities()}

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
    """Ray resources of one engine replica.  With more than one GPU per replica (tensor x
    pipeline parallel) the replica is a placement group: the actor sits in the first
    bundle, and vLLM's Ray executor starts one worker per GPU bundle (it uses the placement
    group it finds itself in)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0  # the actor's own; 0 inside a placement group
    accelerator_type: str | None = None
    resources: dict[str, float] = field(default_factory=dict)
    bundles: tuple[dict[str, float], ...] = ()
    strategy: str = "STRICT_PACK"

    def demand(self) -> list[dict[str, float]]:
        """What one replica takes, as bundles (at most one without a placement group)."""
        if self.bundles:
            return [dict(b) for b in self.bundles]
        one = {"CPU": self.num_cpus, "GPU": self.num_gpus, **self.resources}
        if self.accelerator_type:
            one[ACCELERATOR_PREFIX + self.accelerator_type] = ACCELERATOR_SHARE
        one = {k: v for k, v in one.items() if v}
        return [one] if one else []


# How Ray itself asks for an accelerator type: a sliver of the node's marker resource.
ACCELERATOR_PREFIX = "accelerator_type:"
ACCELERATOR_SHARE = 0.001


class EnginePool:
    """Starts and stops the replicas of one model (a driver-side object)."""

    def __init__(self, spec: EngineSpec, cfg: EngineConfig, placement: EnginePlacement, *,
                 min_replicas: int | None = None,
                 factory: Callable[[EngineConfig], Any] | None = None):
        self.spec, self.cfg, self.placement, self.factory = spec, cfg, placement, factory
        self.min_replicas = min_replicas or len(spec.names)
        self._actors: list = []
        self._groups: list = []
        self._ready_refs: list = []
        self._limiter = None
        self.launched_at: float | None = None

    def _options(self, name: str) -> dict[str, Any]:
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        p = self.placement
        options: dict[str, Any] = {
            "name": name, "namespace": self.spec.namespace,
            "num_cpus": p.num_cpus, "num_gpus": p.num_gpus, "resources": dict(p.resources),
            # An engine that dies mid-run is restarted by Ray (in the same placement group
            # bundle), and calls that were in flight are sent again to the new one (they
            # are idempotent: same requests, same greedy answers), so the batch survives.
            "max_restarts": ENGINE_RESTARTS,
            "max_task_retries": ENGINE_RESTARTS,
        }
        if p.bundles:
            group = ray.util.placement_group(list(p.bundles), strategy=p.strategy,
                                             name=f"{name}-pg")
            self._groups.append(group)
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                group, placement_group_bundle_index=0,
                # vLLM's workers are tasks of the actor: they must land in the group too.
                placement_group_capture_child_tasks=True)
        elif p.accelerator_type:
            options["accelerator_type"] = p.accelerator_type
        return options

    def launch(self) -> None:
        """Create every replica (once) without waiting for its model to load."""
        import ray

        from scalecap_ray.engine.ratelimit import RateLimiter

        if self._actors:
            return
        self.launched_at = time.monotonic()
        cfg = self.cfg
        if cfg.backend == "openai" and (cfg.requests_per_second or cfg.tokens_per_minute):
            # One limiter for all replicas: the quota is the provider account's.
            self._limiter = ray.remote(RateLimiter).options(
                name=f"{self.spec.names[0]}-limits", namespace=self.spec.namespace,
                num_cpus=0).remote(cfg.requests_per_second, cfg.tokens_per_minute)
        actor_cls = ray.remote(EngineActor)
        for name in self.spec.names:
            self._actors.append(actor_cls.options(**self._options(name))
                                .remote(cfg, self.factory, self._limiter))
        self._ready_refs = [a.info.remote() for a in self._actors]

    def wait_ready(self, timeout_s: float | None = None) -> list[dict]:
        """Wait until `min_replicas` have loaded their model (their infos); the others
        join the run when Ray finds resources for them."""
        import ray

        pending, infos = list(self._ready_refs), []
        while len(infos) < self.min_replicas:
            done, pending = ray.wait(pending, num_returns=1, timeout=timeout_s)
            if not done:
                raise TimeoutError(f"{self.spec.role} engine: {len(infos)} of "
                                   f"{self.min_replicas} replica(s) ready after {timeout_s} s")
            infos.append(ray.get(done[0]))  # raises the replica's start error
        logger.info("%s engine ready: %d of %d replica(s) of %s", self.spec.role, len(infos),
                    len(self._actors), self.cfg.model)
        return infos

    def start(self, timeout_s: float | None = None) -> list[dict]:
        """`launch`, then `wait_ready`."""
        self.launch()
        return self.wait_ready(timeout_s)

    @staticmethod
    def _started(actors: list, refs: list) -> list:
        """The actors whose model has loaded (their ready call returned)."""
        import ray

        done, _ = ray.wait(refs, num_returns=len(refs), timeout=0) if refs else ([], [])
        return [a for a, ref in zip(actors, refs, strict=True) if ref in done]

    def _ask_all(self, actors: list, method: str) -> list:
        """`method` called on every actor: the answers of those that gave one.  Stats and
        shutdown come after the last row is written: a replica that died or hangs by then
        is left out with a warning rather than failing a finished run."""
        import ray

        refs = [getattr(a, method).remote() for a in actors]
        ready, late = ray.wait(refs, num_returns=len(refs), timeout=STOP_TIMEOUT_S) \
            if refs else ([], [])
        answers = []
        for ref in (r for r in refs if r in ready):
            try:
                answers.append(ray.get(ref))
            except ray.exceptions.RayError as exc:
                logger.warning("%s engine: a replica failed %s: %s", self.spec.role, method,
                               exc)
        if late:
            logger.warning("%s engine: %d replica(s) did not answer %s within %g s",
                           self.spec.role, len(late), method, STOP_TIMEOUT_S)
        return answers

    def stats(self) -> list[dict[str, float]]:
        """Busy and up time of each replica that started and still answers (see
        `BusyClock`)."""
        return self._ask_all(self._started(self._actors, self._ready_refs), "stats")

    def shutdown(self) -> None:
        """Stop the engines (their worker processes too), release the actors and their
        placement groups.  Replicas still waiting for resources are only removed."""
        import ray

        actors, self._actors = self._actors, []
        limiter, self._limiter = self._limiter, None
        groups, self._groups = self._groups, []
        refs, self._ready_refs = self._ready_refs, []
        try:
            self._ask_all(self._started(actors, refs), "shutdown")
        finally:
            for actor in [*actors, *([limiter] if limiter is not None else [])]:
                ray.kill(actor)
            for group in groups:
                ray.util.remove_placement_group(group)


def route(key: str | None, index: int, replicas: int) -> int:
    """The replica for a request: by its image key (stable across stages and processes),
    else by position."""
    if replicas == 1:
        return 0
    if key is None:
        return index % replicas
    return zlib.crc32(key.encode()) % replicas


class RemoteEngine:
    """A `ChatEngine` backed by the replicas of an `EngineSpec` (used inside stage actors).
    Requests go to the replicas that are up; replicas that start later (more resources
    appeared) are picked up by later calls."""

    def __init__(self, spec: EngineSpec):
        import ray

        self.spec = spec
        self._handles = [ray.get_actor(n, namespace=spec.namespace) for n in spec.names]
        self._pending = {i: h.info.remote() for i, h in enumerate(self._handles)}
        self._ready: list[int] = []
        # The pool has started the minimum already: they answer at once; a short wait
        # lets all of those count from the first batch on.
        ray.wait(list(self._pending.values()), num_returns=1)
        self._refresh(wait_s=READY_WAIT_S)

    def _refresh(self, wait_s: float = 0) -> None:
        import ray

        if not self._pending:
            return
        refs = list(self._pending.values())
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=wait_s)
        for i, ref in list(self._pending.items()):
            if ref in done:
                del self._pending[i]
                ray.get(ref)  # a replica that failed to start fails the stage
                self._ready.append(i)
        self._ready.sort()

    def chat(self, requests: Sequence[ChatRequest], sampling: Sampling) -> list[ChatResult]:
        import ray

        self._refresh()
        groups: dict[int, list[int]] = {}
        for i, req in enumerate(requests):
            replica = self._ready[route(req.image_key, i, len(self._ready))]
            groups.setdefault(replica, []).append(i)
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
