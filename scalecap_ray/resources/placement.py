"""Where a job's engines and stage actors go, and whether they fit: derived from the config
in one place, checked against a cluster before any work (`scalecap-ray plan`, and `run`
before it starts an engine).

Impossible plans are rejected with every reason at once: a replica bigger than any node
under STRICT_PACK, weights that do not fit the GPUs at the given tensor parallelism, an
accelerator type or custom resource no node has, or more than the cluster holds for the
minimum replicas.  Replicas beyond the minimum that do not fit are only noted: they start
when resources appear (an autoscaler adding nodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scalecap_ray.config import ModelDeployment, StageSettings
from scalecap_ray.engine.pool import ACCELERATOR_PREFIX, ACCELERATOR_SHARE, EnginePlacement
from scalecap_ray.resources.cluster import ClusterShape
from scalecap_ray.resources.sizing import WEIGHTS_SHARE_LIMIT, WeightsSize, weights_size

# Ray Data's own tasks (reading, repartitioning, writing) need about one CPU free.
DATA_TASK_CPUS = 1.0
_DEFAULT_GPU_MEMORY_UTILIZATION = 0.9


class PlacementError(ValueError):
    """The job cannot run on the cluster as configured."""


def replica_placement(dep: ModelDeployment, cluster_has_gpus: bool) -> EnginePlacement:
    """Ray resources of one replica of `dep` (the one place they are derived): GPUs per
    replica = tensor x pipeline parallel on a GPU cluster, 0 on a CPU-only one."""
    if dep.backend == "openai":  # the model runs elsewhere: the replica only waits on HTTP
        return EnginePlacement(num_cpus=dep.num_cpus or 0.0, num_gpus=0.0,
                               resources=dict(dep.resources))
    n = dep.gpus_per_replica
    gpus = dep.num_gpus if dep.num_gpus is not None else (float(n) if cluster_has_gpus else 0.0)
    cpus = dep.num_cpus if dep.num_cpus is not None else (1.0 if cluster_has_gpus else 0.0)
    if n == 1 or gpus == 0:
        return EnginePlacement(num_cpus=cpus, num_gpus=gpus,
                               accelerator_type=dep.accelerator_type,
                               resources=dict(dep.resources))
    rank = {"GPU": 1.0}
    if dep.accelerator_type:
        rank[ACCELERATOR_PREFIX + dep.accelerator_type] = ACCELERATOR_SHARE
    first = {**rank, **dep.resources}
    if cpus:
        first["CPU"] = cpus
    return EnginePlacement(num_cpus=cpus, num_gpus=0.0, accelerator_type=dep.accelerator_type,
                           resources=dict(dep.resources),
                           bundles=(first, *[dict(rank)] * (n - 1)),
                           strategy=dep.placement_strategy)


@dataclass(frozen=True)
class EngineShape:
    roles: tuple[str, ...]
    deployment: ModelDeployment
    placement: EnginePlacement
    weights: WeightsSize | None

    @property
    def gpus_per_replica(self) -> float:
        return sum(b.get("GPU", 0.0) for b in self.placement.demand())


@dataclass(frozen=True)
class StageShape:
    name: str
    role: str | None
    settings: StageSettings


@dataclass
class Placement:
    cluster: ClusterShape
    engines: list[EngineShape]
    stages: list[StageShape]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def minimum(self) -> dict[str, float]:
        """GPUs and CPUs the engines and stage actors hold at their minimum counts."""
        total = {"GPU": 0.0, "CPU": 0.0}
        for e in self.engines:
            for bundle in e.placement.demand():
                for k in total:
                    total[k] += bundle.get(k, 0.0) * e.deployment.replica_range[0]
        for s in self.stages:
            total["CPU"] += s.settings.num_cpus * s.settings.actor_range[0]
        return total

    def cluster_total(self) -> dict[str, float]:
        return {k: self.cluster.total(k) for k in ("GPU", "CPU")}

    def describe(self) -> str:
        lines = [f"cluster ({self.cluster.source}): {self.cluster.summary() or 'no nodes'}",
                 "engines:"]
        lines += [f"  {_engine_text(e)}" for e in self.engines]
        lines.append("stages:")
        for s in self.stages:
            lo, hi = s.settings.actor_range
            count = f"{lo}" if lo == hi else f"{lo}-{hi}"
            model = f" -> {s.role}" if s.role else ""
            res = "".join(f", {k} {v:g}" for k, v in s.settings.resources.items())
            lines.append(f"  {s.name}{model}: {count} actor(s) x {s.settings.num_cpus:g} CPU"
                         f"{res}, batch {s.settings.batch_size}")
        lines.append(f"engines and stage actors take {_demand(self.minimum())} at the minimum "
                     f"replicas; the cluster has {_demand(self.cluster_total())}")
        lines += [f"note: {n}" for n in self.notes]
        if self.problems:
            lines += [f"cannot run: {p}" for p in self.problems]
        else:
            lines.append("fits: yes")
        return "\n".join(lines)


def _engine_text(e: EngineShape) -> str:
    dep, p = e.deployment, e.placement
    lo, hi = dep.replica_range
    count = f"{lo}" if lo == hi else f"{lo}-{hi}"
    if p.bundles:
        each = (f"a {p.strategy} placement group of {len(p.bundles)} GPU bundle(s) "
                f"(TP {dep.tensor_parallel_size} x PP {dep.pipeline_parallel_size}), "
                f"{p.num_cpus:g} CPU")
    else:
        each = f"{p.num_gpus:g} GPU, {p.num_cpus:g} CPU"
    if dep.accelerator_type:
        each += f" on {dep.accelerator_type}"
    each += "".join(f", {k} {v:g}" for k, v in p.resources.items())
    text = f"{'/'.join(e.roles)}: {dep.model}, {count} replica(s), each {each}"
    if e.weights is not None:
        text += f"; weights {e.weights.gb:.1f} GB ({e.weights.source})"
        if e.gpus_per_replica:
            text += f", {e.weights.gb / dep.gpus_per_replica:.1f} GB per GPU"
    return text


def _fits(free: dict[str, float], bundle: dict[str, float]) -> bool:
    return all(free.get(k, 0.0) + 1e-9 >= v for k, v in bundle.items())


def _take(free: dict[str, float], bundle: dict[str, float]) -> None:
    for k, v in bundle.items():
        free[k] = free.get(k, 0.0) - v


def place_group(free: list[dict[str, float]], bundles: list[dict[str, float]],
                strategy: str) -> list[int] | None:
    """Put `bundles` on nodes (`free`: what each node has left) as Ray's strategy would;
    the node of each bundle, or None (and `free` untouched) when they do not fit."""
    trial = [dict(f) for f in free]
    chosen: list[int] = []
    if strategy in ("STRICT_PACK", "PACK"):
        for i, node in enumerate(trial):
            total: dict[str, float] = {}
            for b in bundles:
                for k, v in b.items():
                    total[k] = total.get(k, 0.0) + v
            if _fits(node, total):
                _take(node, total)
                free[:] = trial
                return [i] * len(bundles)
        if strategy == "STRICT_PACK":
            return None
    for b in bundles:
        spread = strategy in ("SPREAD", "STRICT_SPREAD")
        order = sorted(range(len(trial)), key=lambda i: (spread and i in chosen, i))
        for i in order:
            if strategy == "STRICT_SPREAD" and i in chosen:
                continue
            if _fits(trial[i], b):
                _take(trial[i], b)
                chosen.append(i)
                break
        else:
            return None
    free[:] = trial
    return chosen


def _structural_problems(e: EngineShape, cluster: ClusterShape) -> list[str]:
    """What no amount of free capacity fixes."""
    dep, name = e.deployment, "/".join(e.roles)
    nodes = cluster.nodes
    out = []
    needs_gpu = e.gpus_per_replica > 0
    if needs_gpu and not cluster.has_gpus:
        out.append(f"{name}: each replica needs {e.gpus_per_replica:g} GPU(s), the cluster "
                   "has none")
        return out
    if dep.accelerator_type and not any(n.accelerator_type == dep.accelerator_type
                                        for n in nodes):
        have = sorted({n.accelerator_type for n in nodes if n.accelerator_type})
        out.append(f"{name}: accelerator_type {dep.accelerator_type!r} is on no node "
                   f"(the cluster has: {', '.join(have) or 'none'})")
    for key in dep.resources:
        if not any(key in n.resources for n in nodes):
            out.append(f"{name}: custom resource {key!r} is on no node")
    n_ranks = len(e.placement.bundles)
    largest = max((n.resources.get("GPU", 0.0) for n in nodes), default=0.0)
    gpu_nodes = sum(1 for n in nodes if n.resources.get("GPU", 0.0) >= 1)
    if e.placement.strategy == "STRICT_PACK" and n_ranks > largest:
        out.append(f"{name}: tensor_parallel_size x pipeline_parallel_size = {n_ranks} GPUs "
                   f"per replica, but the largest node has {largest:g} GPU(s) and "
                   "placement_strategy STRICT_PACK needs them on one node (lower the tensor "
                   "parallelism, split layers over nodes with pipeline_parallel_size and "
                   "PACK, or use bigger nodes)")
    if e.placement.strategy == "STRICT_SPREAD" and n_ranks > gpu_nodes:
        out.append(f"{name}: STRICT_SPREAD puts each of {n_ranks} GPU bundles on its own "
                   f"node; the cluster has {gpu_nodes} GPU node(s)")
    if needs_gpu:
        out += _memory_problems(e, cluster)
    return out


def _memory_problems(e: EngineShape, cluster: ClusterShape) -> list[str]:
    dep = e.deployment
    memories = [n.gpu_memory_gb for n in cluster.nodes if n.resources.get("GPU")
                and (not dep.accelerator_type or n.accelerator_type == dep.accelerator_type)]
    known = [m for m in memories if m]
    if e.weights is None or not known:
        return []
    gpu_gb = max(known)
    share = min(e.gpus_per_replica, 1.0)  # of each GPU the replica uses
    utilization = dep.gpu_memory_utilization or _DEFAULT_GPU_MEMORY_UTILIZATION * share
    usable = gpu_gb * utilization
    per_gpu = e.weights.gb / dep.gpus_per_replica
    if per_gpu <= usable * WEIGHTS_SHARE_LIMIT:
        return []
    return [f"{'/'.join(e.roles)}: {dep.model} needs about {per_gpu:.1f} GB of weights per "
            f"GPU at tensor x pipeline parallel {dep.gpus_per_replica} ({e.weights.gb:.1f} GB, "
            f"{e.weights.source}), but a {gpu_gb:g} GB GPU at gpu_memory_utilization "
            f"{utilization:.2f} leaves {usable:.1f} GB, and the KV cache needs room too: "
            "raise tensor_parallel_size or use larger GPUs"]


def _capacity(placement: Placement) -> None:
    """Place every engine's minimum replicas (largest first), then the stage actors, on
    the cluster's nodes; then note how many of the optional replicas fit too."""
    free = [dict(n.resources) for n in placement.cluster.nodes]
    engines = sorted(placement.engines, key=lambda e: -e.gpus_per_replica)
    for e in engines:
        lo = e.deployment.replica_range[0]
        demand = e.placement.demand()
        placed = sum(1 for _ in range(lo)
                     if place_group(free, demand, e.placement.strategy) is not None)
        if placed < lo:
            need = {k: lo * sum(b.get(k, 0.0) for b in demand) for k in ("GPU", "CPU")}
            placement.problems.append(
                f"{'/'.join(e.roles)}: only {placed} of the minimum {lo} replica(s) fit "
                f"({_demand(need)} wanted beside the other engines; the cluster has "
                f"{_demand(placement.cluster_total())}); lower the replicas, or pass "
                "--cluster-resources with the size an autoscaler grows the cluster to")
    for s in placement.stages:
        lo, _ = s.settings.actor_range
        bundle = {k: v for k, v in {"CPU": s.settings.num_cpus,
                                    **s.settings.resources}.items() if v}
        if bundle and any(place_group(free, [bundle], "PACK") is None for _ in range(lo)):
            placement.problems.append(
                f"stage {s.name}: its {lo} actor(s) of {_demand(bundle)} do not fit beside "
                "the engines and earlier stages")
    if sum(f.get("CPU", 0.0) for f in free) + 1e-9 < DATA_TASK_CPUS:
        placement.problems.append(
            f"no CPU left for Ray Data's read/repartition/write tasks (they need "
            f"{DATA_TASK_CPUS:g}): lower num_cpus of engines or stages")
    for e in engines:
        lo, hi = e.deployment.replica_range
        extra = sum(1 for _ in range(hi - lo)
                    if place_group(free, e.placement.demand(), e.placement.strategy) is not None)
        if extra < hi - lo:
            placement.notes.append(f"{'/'.join(e.roles)}: {lo + extra} of up to {hi} "
                                   "replica(s) fit now; the others start when resources appear")


def _demand(res: dict[str, float]) -> str:
    return ", ".join(f"{v:g} {k}" for k, v in res.items())


def plan_placement(engines: dict[str, tuple[tuple[str, ...], ModelDeployment]],
                   stages: list[tuple[str, str | None, StageSettings]],
                   cluster: ClusterShape) -> Placement:
    """The placement of `engines` (key -> (roles, deployment)) and `stages` on `cluster`,
    with its problems (empty when the job can start)."""
    shapes = [EngineShape(roles, dep, replica_placement(dep, cluster.has_gpus),
                          weights_size(dep) if dep.backend == "vllm" else None)
              for roles, dep in engines.values()]
    placement = Placement(cluster, shapes, [StageShape(*s) for s in stages])
    for e in shapes:
        placement.problems += _structural_problems(e, cluster)
        if e.weights is None and e.gpus_per_replica > 0:
            placement.notes.append(f"{'/'.join(e.roles)}: size of {e.deployment.model} "
                                   "unknown, memory not checked (set weights_gb)")
    if not placement.problems:
        _capacity(placement)
    return placement
