"""How to split a cluster's GPUs between engines whose work per image differs, e.g. a 7B
VLM (caption, verify, answer) and a 72B LLM (questions, integrate).

A pilot run's manifest says how long each engine was busy per image written
(`timing.engines`, in replica-seconds).  With r replicas an engine that needs d
replica-seconds per image serves at most r / d images per second, and the pipeline runs
at its slowest engine's rate.  `suggest_split` starts every engine at one replica and
adds replicas to the slowest one while the cluster still holds the plan (the placement
check decides): adding to any other engine cannot raise the minimum, so the split it
stops at has the highest rate the cluster allows.

Time per image holds only at the load the pilot gave each replica: an engine with more
replicas and the same stage batches gets fewer sequences per replica and runs them less
efficiently.  `batch_sizes` scales each model stage's batch with its engine's replicas
so that every replica gets as many images per call as in the pilot.  Busy time also
over-counts an engine that was starved by the other one (it ran its batches with fewer
sequences than it would at full load), so the split leans towards giving it more
replicas than it needs; a second pilot with the suggested split narrows that.
See docs/benchmarks.md (section 3) for the split measured on simulated GPUs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalecap_ray.config import ModelDeployment
from scalecap_ray.resources.placement import Placement

MANIFEST_FILE = "_manifest.json"


@dataclass(frozen=True)
class Profile:
    """What a pilot run measured: per engine (label `vlm`, `llm` or `vlm+llm`), busy
    replica-seconds per image written, and the model and GPUs per replica it ran with."""

    source: str
    images: int
    seconds_per_image: dict[str, float]
    models: dict[str, tuple[str, int]]
    images_per_s: float  # what the pilot itself streamed
    replicas: dict[str, int]  # replicas each engine ran with
    stages: dict[str, tuple[int, int]]  # per stage: batch size and (most) actors


@dataclass(frozen=True)
class Split:
    replicas: dict[str, int]  # engine label -> replicas
    images_per_s: float  # predicted from the profile
    bottleneck: str
    placement: Placement


def _load(path: str) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_FILE
    try:
        return json.loads(p.read_text())
    except OSError as exc:
        raise ValueError(f"profile {p}: cannot read it ({exc.strerror or exc})") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"profile {p}: not a run manifest (invalid JSON: {exc})") from exc


def read_profile(path: str) -> Profile:
    """The profile in a run's `_manifest.json` (the file, or the output folder holding it);
    raises ValueError naming the file and what it lacks."""
    m = _load(path)
    timing, rows = m.get("timing"), m.get("rows") or {}
    written = rows.get("written", 0)
    if not isinstance(timing, dict) or not timing.get("engines") or not written:
        raise ValueError(f"profile {path}: the run it describes processed no rows with model "
                         "engines (no timing.engines, or rows.written = 0): profile a run "
                         "that captioned some images")
    config = m.get("config") or {}
    demand, models = {}, {}
    for label, engine in timing["engines"].items():
        demand[label] = engine["busy_s"] / written
        dep = config.get(label.split("+")[0]) or {}
        models[label] = (dep.get("model", "?"), dep.get("tensor_parallel_size", 1)
                         * dep.get("pipeline_parallel_size", 1))
    if not any(demand.values()):
        raise ValueError(f"profile {path}: its engines were never busy")
    streaming = timing.get("streaming_s") or 0.0
    replicas = {label: e.get("replicas", 1) for label, e in timing["engines"].items()}
    stages = {name: (st["batch_size"], _most(st["concurrency"]))
              for name, st in (config.get("stages") or {}).items()}
    return Profile(str(path), written, demand, models,
                   written / streaming if streaming else 0.0, replicas, stages)


def _most(concurrency: int | list[int]) -> int:
    return concurrency[-1] if isinstance(concurrency, list) else concurrency


def check_profile(profile: Profile, engines: dict[str, ModelDeployment]) -> None:
    """Raise ValueError unless the profile measured the same engines (model and GPUs per
    replica) as `engines` (label -> deployment): time per image means nothing for
    another model or another parallelism."""
    if set(profile.seconds_per_image) != set(engines):
        raise ValueError(
            f"profile {profile.source} measured engine(s) {', '.join(profile.models)} but "
            f"this configuration has {', '.join(engines)}: profile a run whose roles share "
            "(or do not share) a model as in this configuration")
    for label, dep in engines.items():
        model, gpus = profile.models[label]
        if (model, gpus) != (dep.model, dep.gpus_per_replica):
            raise ValueError(
                f"profile {profile.source}: {label} ran {model} on {gpus} GPU(s) per replica, "
                f"this configuration has {dep.model} on {dep.gpus_per_replica}: profile a "
                "run of the same models and parallelism")


def rate(replicas: dict[str, int], demand: dict[str, float]) -> tuple[float, str]:
    """Predicted images/s of `replicas` and the engine that limits it."""
    per_engine = {label: (replicas[label] / d if d else float("inf"))
                  for label, d in demand.items()}
    bottleneck = min(per_engine, key=per_engine.__getitem__)
    return per_engine[bottleneck], bottleneck


def suggest_split(demand: dict[str, float], place: Callable[[dict[str, int]], Placement],
                  max_replicas: int = 4096) -> Split:
    """The replicas per engine with the highest predicted rate that `place` (replicas ->
    the plan's placement on the cluster) accepts.  Raises ValueError when even one
    replica each does not fit."""
    replicas = dict.fromkeys(demand, 1)
    placement = place(replicas)
    free = ["/".join(e.roles) for e in placement.engines if not e.gpus_per_replica]
    if free:
        # Nothing bounds them but the cluster's CPUs: there is no GPU budget to split.
        raise ValueError(f"{', '.join(free)}: takes no GPU on this cluster (an API backend, "
                         "or a cluster without GPUs), so there are no GPUs to split")
    if not placement.ok:
        raise ValueError("one replica per engine does not fit the cluster:\n"
                         + "\n".join(placement.problems))
    while sum(replicas.values()) < max_replicas:
        _, bottleneck = rate(replicas, demand)
        trial = {**replicas, bottleneck: replicas[bottleneck] + 1}
        grown = place(trial)
        if not grown.ok:
            break
        replicas, placement = trial, grown
    images_per_s, bottleneck = rate(replicas, demand)
    return Split(replicas, images_per_s, bottleneck, placement)


def batch_sizes(profile: Profile, stages: list[tuple[str, str, int]],
                replicas: dict[str, int]) -> dict[str, int]:
    """Batch sizes for the model stages (name, role, actors) that give every replica of
    their engine as many images per call as the pilot did (batch x actors / replicas;
    calls are routed to replicas by image)."""
    engine_of = {role: label for label in replicas for role in label.split("+")}
    out = {}
    for name, role, actors in stages:
        label = engine_of[role]
        if name not in profile.stages or label not in profile.replicas:
            continue
        batch, pilot_actors = profile.stages[name]
        per_replica = batch * pilot_actors / profile.replicas[label]
        out[name] = max(1, round(per_replica * replicas[label] / actors))
    return out


def describe(profile: Profile, split: Split, configured: dict[str, int],
             batches: dict[str, int] | None = None) -> str:
    """The suggestion as lines for `scalecap-ray plan --profile`."""
    need = ", ".join(f"{label} {d:.3g} replica-s/image"
                     for label, d in profile.seconds_per_image.items())
    now, _ = rate(configured, profile.seconds_per_image)
    counts = " ".join(f"{label}={n}" for label, n in split.replicas.items())
    total = split.placement.cluster_total()["GPU"]
    free = total - split.placement.minimum()["GPU"]
    # GPUs the limiting engine cannot use (a whole TP group no longer fits) are left to
    # the user: more replicas of the other engine would only wait on it.
    left = f"; {free:g} of {total:g} GPUs left free" if free else ""
    flags = " ".join(f"--set {role}.replicas={n}" for label, n in split.replicas.items()
                     for role in label.split("+"))
    lines = [f"profile: {profile.source} ({profile.images} images, "
             f"{profile.images_per_s:.2f} images/s): {need}",
             f"split: {counts} -> about {split.images_per_s:.2f} images/s, limited by "
             f"{split.bottleneck} (as configured: about {now:.2f} images/s){left}",
             f"  {flags}"]
    if batches:
        lines += ["batches that give each replica the pilot's images per call:",
                  "  " + " ".join(f"--set stages.{name}.batch_size={n}"
                                  for name, n in batches.items())]
    return "\n".join(lines)
