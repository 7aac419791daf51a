"""Jobs as plans: `plan_*` functions only describe a job (stages, their arguments, the
engines they use).  No Ray, no I/O, no model downloads happen here; `scalecap_ray.runner`
runs a plan.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from scalecap_ray.config import ModelDeployment, ScaleCapConfig, StageSettings
from scalecap_ray.engine.pool import EngineSpec
from scalecap_ray.engine.types import Sampling
from scalecap_ray.io.storage import RetryPolicy
from scalecap_ray.resources.cluster import ClusterShape
from scalecap_ray.resources.placement import Placement, plan_placement
from scalecap_ray.stages.answer import AnswerStage
from scalecap_ray.stages.batch import BOOKKEEPING
from scalecap_ray.stages.caption import CaptionStage
from scalecap_ray.stages.filter import FilterStage
from scalecap_ray.stages.integrate import IntegrateStage
from scalecap_ray.stages.load import LoadStage
from scalecap_ray.stages.questions import QuestionsStage
from scalecap_ray.stages.verify import VerifyStage

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
    payload: str = "scalecap_record"  # the column `export` writes with each image

    def engine_groups(self) -> dict[str, tuple[tuple[str, ...], ModelDeployment]]:
        """Each distinct engine by its label, the roles it serves joined by `+` (`vlm`,
        `llm`, or `vlm+llm` when both use one model): its roles and deployment."""
        by_names: dict[tuple[str, ...], tuple[tuple[str, ...], ModelDeployment]] = {}
        for role, (spec, dep) in self.engines.items():
            roles, _ = by_names.get(spec.names, ((), dep))
            by_names[spec.names] = ((*roles, role), dep)
        return {"+".join(roles): (roles, dep) for roles, dep in by_names.values()}

    def placement(self, cluster: ClusterShape, replicas: dict[str, int] | None = None
                  ) -> Placement:
        """Where this plan's engines and stage actors go on `cluster`, and what stops it;
        `replicas` (engine label -> count) replaces the configured counts."""
        groups = {}
        for label, (roles, dep) in self.engine_groups().items():
            if replicas and label in replicas:
                dep = dep.model_copy(update={"replicas": replicas[label]})
            groups[label] = (roles, dep)
        stages = [(s.name, s.role, s.settings) for s in self.stages]
        return plan_placement(groups, stages, cluster)


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
            names = tuple(f"scalecap-{run_id}-{role}-{i}" for i in range(dep.replica_range[1]))
            specs[role] = (EngineSpec(role=role, names=names), dep)
    return specs


def stage_sampling(settings: StageSettings, default_max_tokens: int) -> Sampling:
    return Sampling(max_tokens=settings.max_tokens or default_max_tokens,
                    temperature=settings.temperature, top_p=settings.top_p,
                    seed=settings.seed)


def retry_policy(config: ScaleCapConfig) -> RetryPolicy:
    i = config.input
    return RetryPolicy(attempts=i.read_attempts, backoff_s=i.retry_backoff_s,
                       timeout_s=i.read_timeout_s)


def _load_stage(config: ScaleCapConfig) -> StagePlan:
    return StagePlan("load", LoadStage, {"image": config.image, "retry": retry_policy(config)},
                     config.stages.load)


def check_columns(stages: list[StagePlan]) -> None:
    """Fail at plan time when a stage reads a column no earlier step provides."""
    from scalecap_ray.io.records import INPUT_COLUMNS

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
    return Plan("caption", config, run_id, engine_specs(config, run_id, ("vlm",)), stages,
                payload=output_key)


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
