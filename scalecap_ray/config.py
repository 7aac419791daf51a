"""The job's configuration: one typed, validated object, loadable from YAML and
overridable field by field (`--set a.b=value`).  Unknown keys are errors everywhere.

Names and defaults follow DataFlow-MM's `ImageScaleCaptionGenerateConfig` where they
overlap (tau_sentence, max_questions, max_init_tokens, max_answer_tokens, second_filter).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scalecap_ray import prompts
from scalecap_ray.engine.config import EngineConfig

_STRICT = ConfigDict(extra="forbid", frozen=True)


PlacementStrategy = Literal["STRICT_PACK", "PACK", "SPREAD", "STRICT_SPREAD"]


def _check_range(name: str, value: int | tuple[int, int]) -> None:
    if (isinstance(value, int) and value < 1) or (
            isinstance(value, tuple) and not 1 <= value[0] <= value[1]):
        raise ValueError(f"{name} must be >= 1 or (min, max) with 1 <= min <= max, got {value}")


class ModelDeployment(EngineConfig):
    """A model (an engine config) and how its copies are placed on the cluster."""

    replicas: int | tuple[int, int] = Field(
        1, description="Engine replicas (actors) of this model: a count, or (min, max): the "
        "run starts once min are up and uses the others as they find resources (e.g. when "
        "the autoscaler adds nodes).")
    num_cpus: float | None = Field(
        None, ge=0, description="CPUs reserved per replica; default 1 on a GPU cluster, 0 on "
        "a CPU-only one, where the engine's work runs in vLLM's own process on every core "
        "anyway, and a reservation would only starve the tasks that feed it.")
    num_gpus: float | None = Field(
        None, ge=0, description="GPUs per replica; default tensor x pipeline parallel on a "
        "GPU cluster, 0 on a CPU-only one. A fraction (tensor x pipeline parallel = 1 only) "
        "lets models share one GPU; gpu_memory_utilization then defaults to 0.9 x the "
        "fraction.")
    accelerator_type: str | None = Field(None, description="Ray accelerator type the replicas "
                                         "need, e.g. 'H100' or 'A100-80G'.")
    placement_strategy: PlacementStrategy = Field(
        "STRICT_PACK", description="How the GPUs of one replica are placed when it has more "
        "than one (tensor x pipeline parallel > 1): STRICT_PACK = one node (what tensor "
        "parallelism needs to be fast), PACK = as few nodes as possible, SPREAD / "
        "STRICT_SPREAD = over nodes (pipeline parallel across nodes).")
    resources: dict[str, float] = Field(
        default_factory=dict, description="Custom Ray resources per replica, e.g. "
        "{node_pool_a: 1} to pin replicas to nodes that advertise it.")
    weights_gb: float | None = Field(
        None, gt=0, description="Size of the weights in GB, for the memory check before a "
        "run; default: the checkpoint's files (local models), the known size of common "
        "models, or an estimate from the parameter count in the name ('7B').")

    @model_validator(mode="after")
    def _check_placement(self) -> ModelDeployment:
        _check_range("replicas", self.replicas)
        n = self.gpus_per_replica
        if self.num_gpus is not None and n > 1 and self.num_gpus != n:
            raise ValueError(
                f"num_gpus={self.num_gpus} but tensor_parallel_size x pipeline_parallel_size "
                f"= {n}: a parallel replica takes one whole GPU per rank (leave num_gpus unset)")
        return self

    @property
    def replica_range(self) -> tuple[int, int]:
        """(min, max) replicas."""
        r = self.replicas
        return (r, r) if isinstance(r, int) else r

    def engine_config(self, num_gpus: float | None = None) -> EngineConfig:
        """The engine part alone (what identifies one loaded model).  On a GPU share
        (`num_gpus` < 1) the memory the engine may take defaults to 0.9 of the share, so
        engines sharing a GPU fit beside each other."""
        fields = self.model_dump(include=set(EngineConfig.model_fields))
        if num_gpus is not None and 0 < num_gpus < 1 and self.gpu_memory_utilization is None:
            fields["gpu_memory_utilization"] = round(0.9 * num_gpus, 4)
        return EngineConfig(**fields)


class StageSettings(BaseModel):
    """Batching, parallelism and sampling of one stage."""

    model_config = _STRICT

    batch_size: int = Field(
        64, ge=1, description="Images per batch sent to the engine at once. Larger batches "
        "keep more sequences in the engine's batch (docs/benchmarks.md: 32 instead of 8 cut "
        "streaming time by a third on the CPU engine; 64 instead of 32 halved the engine "
        "time the pipeline adds to one call per stage, +4% instead of +7%).")
    concurrency: int | tuple[int, int] = Field(
        1, description="Stage actors: a fixed count or (min, max) for autoscaling."
    )
    num_cpus: float = Field(
        0.0, ge=0, description="CPUs reserved per stage actor. Model stages only wait on "
        "their engine, so by default they reserve none and never hold back the CPUs that "
        "loading and writing need.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature; 0 = greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    seed: int = Field(0, description="Sampling seed (used when temperature > 0).")
    max_tokens: int | None = Field(
        None, ge=1, description="Output token limit; default: the stage's own (caption: "
        "max_init_tokens, answer: max_answer_tokens, questions: 512, integrate: 4096; the "
        "scoring stages need one token)."
    )

    resources: dict[str, float] = Field(
        default_factory=dict, description="Custom Ray resources per stage actor, e.g. "
        "{cpu_pool: 1} to keep stage actors off the GPU nodes.")

    @model_validator(mode="after")
    def _check_concurrency(self) -> StageSettings:
        _check_range("concurrency", self.concurrency)
        return self

    @property
    def actor_range(self) -> tuple[int, int]:
        """(min, max) actors."""
        c = self.concurrency
        return (c, c) if isinstance(c, int) else c


class Stages(BaseModel):
    """Settings per stage."""

    model_config = _STRICT

    load: StageSettings = Field(default_factory=lambda: StageSettings(batch_size=16, num_cpus=0.5))
    caption: StageSettings = Field(default_factory=StageSettings)
    verify: StageSettings = Field(default_factory=StageSettings)
    questions: StageSettings = Field(default_factory=StageSettings)
    answer: StageSettings = Field(default_factory=StageSettings)
    filter: StageSettings = Field(default_factory=StageSettings)
    integrate: StageSettings = Field(default_factory=StageSettings)


class Prompts(BaseModel):
    """Prompt templates; `{}` marks where text goes.  Defaults: the ScaleCap paper's
    prompts P1-P5 (arXiv:2506.19848, appendix A) and DataFlow-MM's grounding questions."""

    model_config = _STRICT

    system: str | None = Field(None, description="System prompt; default: the model's own.")
    caption: str = Field(prompts.CAPTION_PROMPT, description="P1, initial caption.")
    questions: str = Field(prompts.QUESTIONS_PROMPT,
                           description="P2, one golden sentence -> instructions.")
    object_summary: str = Field(prompts.OBJECT_SUMMARY_PROMPT, description="P3, object details.")
    position_summary: str = Field(prompts.POSITION_SUMMARY_PROMPT, description="P4, positions.")
    integrate: str = Field(prompts.INTEGRATE_PROMPT, description="P5, final caption (3 slots).")
    sentence_grounding: str = Field(prompts.SENTENCE_GROUNDING_PROMPT,
                                    description="yes/no check of a sentence.")
    answer_grounding: str = Field(prompts.ANSWER_GROUNDING_PROMPT,
                                  description="yes/no check of an answer.")

    @model_validator(mode="after")
    def _check_slots(self) -> Prompts:
        slots = {"caption": 0, "questions": 1, "object_summary": 1, "position_summary": 1,
                 "integrate": 3, "sentence_grounding": 1, "answer_grounding": 1}
        for name, n in slots.items():
            found = getattr(self, name).count("{}")
            if found != n:
                raise ValueError(f"prompts.{name} must contain {n} '{{}}' slot(s), found {found}")
        return self


class InputSettings(BaseModel):
    """Where the images come from."""

    model_config = _STRICT

    image_key: str = Field("image", description="Field/column holding the image path, URI, "
                           "or (Parquet/CSV) encoded image bytes.")
    id_key: str | None = Field(None, description="Field/column holding a row id; default: a "
                               "stable hash of the image reference.")
    limit: int | None = Field(None, ge=1, description="Process only the first N rows.")
    read_attempts: int = Field(5, ge=1, description="Tries per file read (S3, GCS, HTTP) "
                               "before the row fails.")
    retry_backoff_s: float = Field(0.5, ge=0, description="First wait between HTTP tries; "
                                   "doubles each time.")
    read_timeout_s: float = Field(60.0, gt=0, description="Timeout of one HTTP request.")


class ImageSettings(BaseModel):
    """How images are normalised before the first model sees them."""

    model_config = _STRICT

    max_pixels: int = Field(1280 * 28 * 28, ge=1, description="Pixel budget: larger images "
                            "are scaled down to it, keeping their aspect ratio (Qwen2.5-VL's "
                            "usual budget).")
    min_pixels: int = Field(56 * 56, ge=1, description="Smaller images are scaled up to it.")
    min_side: int = Field(28, ge=1, description="Shortest side the model accepts (one merged "
                          "patch); thinner images are scaled up if the budget allows.")
    max_aspect_ratio: float = Field(200.0, ge=1, description="Longest over shortest side the "
                                    "model accepts.")
    pixel_limit: int = Field(178_956_970, ge=1, description="Refuse to decode images with "
                             "more pixels (decompression bombs).")
    jpeg_quality: int = Field(95, ge=1, le=100, description="Quality of the re-encoded image.")

    @model_validator(mode="after")
    def _check_budget(self) -> ImageSettings:
        if self.min_pixels > self.max_pixels:
            raise ValueError("image.min_pixels must not exceed image.max_pixels")
        return self


class OutputSettings(BaseModel):
    """How the Parquet output is laid out."""

    model_config = _STRICT

    rows_per_file: int = Field(1024, ge=1, description="Rows per part file (the last one of "
                               "a run may hold fewer).")
    row_group_rows: int = Field(256, ge=1, description="Rows per Parquet row group: the unit "
                                "a dataloader reads at once.")


class ScaleCapConfig(BaseModel):
    """Everything a ScaleCap (or plain caption) job needs."""

    model_config = _STRICT

    vlm: ModelDeployment = Field(default_factory=ModelDeployment,
                                 description="The vision-language model (stages A, B, D, D').")
    llm: ModelDeployment = Field(default_factory=ModelDeployment,
                                 description="The text model (stages C, E). When it equals the "
                                 "VLM, one engine serves both.")
    tau_sentence: float = Field(0.15, description="Contrastive verify: keep a sentence when its "
                                "score (max probability gain from the image) exceeds this.")
    yes_threshold: float = Field(0.5, ge=0, le=1, description="yes/no verify and filter: keep "
                                 "when P(yes) / (P(yes) + P(no)) exceeds this.")
    verify_mode: Literal["contrastive", "yes_no"] = Field(
        "contrastive", description="contrastive = the paper's image/no-image token "
        "probabilities; yes_no = DataFlow-MM's grounding question per sentence.")
    verify_fallback: bool = Field(
        False, description="When the VLM is an API without prompt log-probabilities (OpenAI's "
        "own), verify with yes/no questions instead of failing at start-up (contrastive mode "
        "needs them; vLLM's server has them).")
    keep_all_if_none: bool = Field(True, description="When no sentence passes, keep the whole "
                                   "initial caption as the one golden sentence (official code).")
    max_questions: int = Field(20, ge=1, description="Most object instructions per image.")
    max_init_tokens: int = Field(1024, ge=1, description="Output limit of the initial caption.")
    max_answer_tokens: int = Field(256, ge=1, description="Output limit of each answer.")
    second_filter: bool = Field(False, description="Check answers against the image too (D').")
    integrate_mode: Literal["paper", "single"] = Field(
        "paper", description="paper = object summary, position summary, then final (P3, P4, "
        "P5); single = one P5 call with the answers as both (DataFlow-MM's pipeline).")
    prompts: Prompts = Field(default_factory=Prompts)
    stages: Stages = Field(default_factory=Stages)
    input: InputSettings = Field(default_factory=InputSettings)
    image: ImageSettings = Field(default_factory=ImageSettings)
    output: OutputSettings = Field(default_factory=OutputSettings)

    def shared_engine(self) -> bool:
        """Whether one engine serves both roles (same model, same engine settings)."""
        return self.vlm.engine_config() == self.llm.engine_config()


def _parse_value(text: str) -> Any:
    """A `--set` value: YAML scalars and lists (`true`, `4`, `[1, 4]`, `null`), else text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` assignments to a nested dict (a copy is returned)."""
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {item!r}")
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"--set {key}: {part!r} is not a section")
            node = child
        node[parts[-1]] = _parse_value(value)
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict[str, Any] | None = None) -> ScaleCapConfig:
    """Read YAML (if given), lay `base` under it, apply `--set` overrides, validate."""
    data: dict[str, Any] = dict(base or {})
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"config {path}: expected a mapping at the top level")
        data = _merge(data, loaded)
    data = apply_overrides(data, overrides or [])
    return ScaleCapConfig.model_validate(data)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
