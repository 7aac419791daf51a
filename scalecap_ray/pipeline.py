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
from scalecap_ray.stages.answer import AnswerStage
from scalecap_ray.stages.batch import BOOKKEEPING, USAGE, USAGE_FIELDS
from scalecap_ray.stages.caption import CaptionStage
from scalecap_ray.stages.filter import FilterStage
from scalecap_ray.stages.integrate import IntegrateStage
from scalecap_ray.stages.load import LoadStage
from scalecap_ray.stages.questions import QuestionsStage
from scalecap_ray.stages.verify import VerifyStage

logger = logging.getLogger(__name__)

# Columns that exist only to move data between stages.
INTERNAL_COLUMNS = ("image_bytes",)
# The DataFlow-MM record (the seed's `scalecap_record`), assembled from the columns.
RECORD_FIELDS: dict[str, pa.DataType] = {
    "init_caption": pa.string(),
    "golden_sentences": pa.list_(pa.string()),
    "object_questions": pa.list_(pa.string()),
    "position_questions": pa.list_(pa.string()),
    "qa_answers_filtered": pa.list_(pa.string()),
    "final_caption": pa.string(),
}
RECORD_TYPE = pa.struct([pa.field(k, v) for k, v in RECORD_FIELDS.items()])
# LLM stages' default output limits: instructions are short; the official code gives
# every integration call 4096 tokens.
QUESTIONS_MAX_TOKENS = 512
INTEGRATE_MAX_TOKENS = 4096
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


def check_columns(stages: list[StagePlan]) -> None:
    """Fail at plan time when a stage reads a column no earlier step provides."""
    from scalecap_ray.io.readers import INPUT_COLUMNS

    available = set(INPUT_COLUMNS) | set(BOOKKEEPING)
    for stage in stages:
        writes = stage.cls.writes
        missing = [c for c in stage.cls.reads if c not in available]
        if missing:
            raise ValueError(f"stage {stage.name} reads {missing}, which no earlier stage writes")
        available |= set(writes) | {stage.kwargs.get("output", "")}


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
    stages = [_load_stage(config), caption]
    check_columns(stages)
    return Plan("caption", config, run_id, engine_specs(config, run_id, ("vlm",)), stages)


def plan_scalecap_job(config: ScaleCapConfig, *, run_id: str | None = None) -> Plan:
    """The ScaleCap job: caption, verify, questions, answer, [filter], integrate."""
    run_id = run_id or new_run_id()
    c, st, p = config, config.stages, config.prompts
    scoring = {"tau": c.tau_sentence, "yes_threshold": c.yes_threshold, "system": p.system}
    stages = [
        _load_stage(c),
        StagePlan("caption", CaptionStage, {
            "prompt": p.caption, "system": p.system,
            "sampling": stage_sampling(st.caption, c.max_init_tokens)}, st.caption, "vlm"),
        StagePlan("verify", VerifyStage, {
            "mode": c.verify_mode, "caption_prompt": p.caption,
            "grounding_prompt": p.sentence_grounding, "keep_all_if_none": c.keep_all_if_none,
            **scoring}, st.verify, "vlm"),
        StagePlan("questions", QuestionsStage, {
            "prompt": p.questions, "max_questions": c.max_questions, "system": p.system,
            "sampling": stage_sampling(st.questions, QUESTIONS_MAX_TOKENS)}, st.questions, "llm"),
        StagePlan("answer", AnswerStage, {
            "system": p.system, "sampling": stage_sampling(st.answer, c.max_answer_tokens)},
            st.answer, "vlm"),
    ]
    if c.second_filter:
        stages.append(StagePlan("filter", FilterStage, {
            "mode": c.verify_mode, "grounding_prompt": p.answer_grounding, **scoring},
            st.filter, "vlm"))
    stages.append(StagePlan("integrate", IntegrateStage, {
        "mode": c.integrate_mode, "object_prompt": p.object_summary,
        "position_prompt": p.position_summary, "final_prompt": p.integrate, "system": p.system,
        "sampling": stage_sampling(st.integrate, INTEGRATE_MAX_TOKENS)}, st.integrate, "llm"))
    check_columns(stages)
    return Plan("scalecap", c, run_id, engine_specs(c, run_id, ("vlm", "llm")), stages)


def engine_placement(dep: ModelDeployment, cluster_has_gpus: bool) -> EnginePlacement:
    """Ray resources of one replica (the one place they are derived)."""
    gpus = dep.num_gpus if dep.num_gpus is not None else (
        float(dep.gpus_per_replica) if cluster_has_gpus else 0.0)
    return EnginePlacement(num_cpus=dep.num_cpus, num_gpus=gpus,
                           accelerator_type=dep.accelerator_type)


def scalecap_records(table: pa.Table) -> pa.Array:
    """The seed's record per row, from whatever the row's stages produced."""
    columns = {k: table.column(k).to_pylist() for k in RECORD_FIELDS}
    records = []
    for i in range(table.num_rows):
        rec = {k: columns[k][i] for k in RECORD_FIELDS}
        records.append({k: (v if v is not None or RECORD_FIELDS[k] == pa.string() else [])
                        for k, v in rec.items()})
    return pa.array(records, type=RECORD_TYPE)


def finalize(batch: pa.Table, job: str = "caption") -> pa.Table:
    """Drop the internal columns, add the ScaleCap record (scalecap job) and per-row token
    totals over all stages, and put the bookkeeping columns last."""
    table = batch.select([c for c in batch.column_names if c not in INTERNAL_COLUMNS])
    if job == "scalecap":
        table = table.append_column(pa.field("scalecap_record", RECORD_TYPE),
                                    scalecap_records(table))
    usage = table.column(USAGE).to_pylist()
    for name in USAGE_FIELDS:
        totals = [sum(entry[name] for entry in (u or [])) for u in usage]
        table = table.append_column(pa.field(name, pa.int64()), pa.array(totals, pa.int64()))
    last = [*BOOKKEEPING, *USAGE_FIELDS]
    return table.select([c for c in table.column_names if c not in last] + last)


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
    return ds.map_batches(finalize, fn_kwargs={"job": plan.job}, batch_format="pyarrow",
                          num_cpus=LIGHT_TASK_CPUS)


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
