"""Jobs as Ray Data pipelines.

`plan_*` functions only describe a job (stages, engines, resources): no Ray, no I/O, no
model downloads.  `run_plan` is where things happen: it starts the engines, streams the
input through the stages into Parquet, and shuts the engines down, also on failure.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from scalecap_ray.config import ModelDeployment, ScaleCapConfig, StageSettings
from scalecap_ray.engine.pool import EnginePlacement, EnginePool, EngineSpec
from scalecap_ray.engine.types import Sampling
from scalecap_ray.io.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, DEFAULT_PIXEL_LIMIT
from scalecap_ray.stages.batch import USAGE, USAGE_FIELDS
from scalecap_ray.stages.caption import CaptionStage
from scalecap_ray.stages.load import LoadStage

logger = logging.getLogger(__name__)

# Columns that exist only to move data between stages.
INTERNAL_COLUMNS = ("image_bytes",)
# Reading lines, parsing records and writing Parquet are light: reserve little CPU for
# them, so they never wait behind engines and stage actors on a small machine.
LIGHT_TASK_CPUS = 0.1


@dataclass(frozen=True)
class StagePlan:
    """One `map_batches` step: the stage class, its constructor arguments, its settings,
    and the engine role it talks to (None for stages that call no model)."""

    name: str
    cls: type
    kwargs: dict[str, Any]
    settings: StageSettings
    role: str | None = None


@dataclass(frozen=True)
class Plan:
    job: Literal["caption", "scalecap"]
    config: ScaleCapConfig
    run_id: str
    engines: dict[str, tuple[EngineSpec, ModelDeployment]]
    stages: list[StagePlan] = field(default_factory=list)


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def engine_specs(config: ScaleCapConfig, run_id: str, roles: tuple[str, ...]
                 ) -> dict[str, tuple[EngineSpec, ModelDeployment]]:
    """Engine replicas per role; roles whose model and engine settings are equal share
    one set of engines (one copy of each distinct model per GPU)."""
    specs: dict[str, tuple[EngineSpec, ModelDeployment]] = {}
    for role in roles:
        dep: ModelDeployment = getattr(config, role)
        for _other, (spec, other_dep) in specs.items():
            if other_dep.engine_config() == dep.engine_config():
                specs[role] = (spec, other_dep)
                break
        else:
            names = tuple(f"scalecap-{run_id}-{role}-{i}" for i in range(dep.replicas))
            specs[role] = (EngineSpec(role=role, names=names), dep)
    return specs


def stage_sampling(settings: StageSettings, default_max_tokens: int) -> Sampling:
    return Sampling(max_tokens=settings.max_tokens or default_max_tokens,
                    temperature=settings.temperature, top_p=settings.top_p,
                    seed=settings.seed)


def _load_stage(config: ScaleCapConfig) -> StagePlan:
    return StagePlan("load", LoadStage, {"max_pixels": DEFAULT_MAX_PIXELS,
                                         "min_pixels": DEFAULT_MIN_PIXELS,
                                         "pixel_limit": DEFAULT_PIXEL_LIMIT},
                     config.stages.load)


def plan_caption_job(config: ScaleCapConfig, *, prompt: str | None = None,
                     output_key: str = "caption", run_id: str | None = None) -> Plan:
    """The plain caption job (DataFlow-MM's ImageCaptionGenerate): one VLM request per image."""
    run_id = run_id or new_run_id()
    settings = config.stages.caption
    caption = StagePlan("caption", CaptionStage, {
        "prompt": prompt or config.prompts.caption,
        "system": config.prompts.system,
        "sampling": stage_sampling(settings, config.max_init_tokens),
        "output": output_key,
    }, settings, role="vlm")
    return Plan("caption", config, run_id, engine_specs(config, run_id, ("vlm",)),
                [_load_stage(config), caption])


def engine_placement(dep: ModelDeployment, cluster_has_gpus: bool) -> EnginePlacement:
    """Ray resources of one replica (the one place they are derived)."""
    gpus = dep.num_gpus if dep.num_gpus is not None else (
        float(dep.gpus_per_replica) if cluster_has_gpus else 0.0)
    return EnginePlacement(num_cpus=dep.num_cpus, num_gpus=gpus,
                           accelerator_type=dep.accelerator_type)


def finalize(batch: pa.Table) -> pa.Table:
    """Drop the internal columns and add per-row token totals over all stages."""
    keep = [c for c in batch.column_names if c not in INTERNAL_COLUMNS]
    table = batch.select(keep)
    usage = table.column(USAGE).to_pylist()
    for name in USAGE_FIELDS:
        totals = [sum(entry[name] for entry in (u or [])) for u in usage]
        table = table.append_column(pa.field(name, pa.int64()), pa.array(totals, pa.int64()))
    return table


def _compute(settings: StageSettings):
    import ray.data

    c = settings.concurrency
    if isinstance(c, tuple):
        return ray.data.ActorPoolStrategy(min_size=c[0], max_size=c[1])
    return ray.data.ActorPoolStrategy(size=c)


def build_dataset(plan: Plan, input_path: str):
    """The lazy Ray dataset of the job (runs nothing until consumed)."""
    from scalecap_ray.io.readers import read_jsonl

    ds = read_jsonl(input_path, plan.config.input, num_cpus=LIGHT_TASK_CPUS)
    for stage in plan.stages:
        kwargs = dict(stage.kwargs)
        if stage.role is not None:
            kwargs["engine"] = plan.engines[stage.role][0]
        ds = ds.map_batches(
            stage.cls,
            fn_constructor_kwargs=kwargs,
            batch_size=stage.settings.batch_size,
            batch_format="pyarrow",
            compute=_compute(stage.settings),
            num_cpus=stage.settings.num_cpus,
        )
    return ds.map_batches(finalize, batch_format="pyarrow", num_cpus=LIGHT_TASK_CPUS)


def run_plan(plan: Plan, input_path: str, output_dir: str) -> None:
    """Start the engines, stream the input through the stages into Parquet files under
    `output_dir`, and stop the engines (also when the run fails)."""
    import ray

    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    pools: list[EnginePool] = []
    seen: set[str] = set()
    for spec, dep in plan.engines.values():
        if spec.names[0] in seen:
            continue  # a shared engine serves several roles
        seen.add(spec.names[0])
        pools.append(EnginePool(spec, dep.engine_config(), engine_placement(dep, has_gpus)))
    try:
        for pool in pools:
            pool.start()
        build_dataset(plan, input_path).write_parquet(
            output_dir, compression="zstd", ray_remote_args={"num_cpus": LIGHT_TASK_CPUS})
    finally:
        for pool in pools:
            pool.shutdown()
