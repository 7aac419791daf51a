"""Typed configuration of one model engine."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


class EngineConfig(BaseModel):
    """How to run one model with vLLM.  Unset (None) fields take a default that depends on
    the machine: on a GPU the usual vLLM values, on a CPU values that work on a small
    development machine (see `scalecap_ray.engine.vllm_engine.resolve_engine_args`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(DEFAULT_MODEL, description="Hugging Face model id or local path.")
    tokenizer: str | None = Field(None, description="Tokenizer id or path; default: the model's.")
    family: str = Field(
        "auto",
        description="Model family for per-model engine settings (a key of "
        "scalecap_ray.engine.models.MODEL_FAMILIES); 'auto' reads it from the model's config.",
    )
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs that split each layer.")
    pipeline_parallel_size: int = Field(1, ge=1, description="GPUs that split the layer stack.")
    max_model_len: int | None = Field(
        None, ge=256, description="Longest prompt plus output, in tokens; default 32768 "
        "(capped by the model's own limit)."
    )
    dtype: str = Field("auto", description="Weight and activation dtype ('auto' = the model's).")
    gpu_memory_utilization: float | None = Field(
        None, gt=0.0, le=1.0,
        description="Share of accelerator memory vLLM may take (on CPU: of host memory, "
        "for the KV cache). Default 0.90 on GPU, 0.10 on CPU.",
    )
    enforce_eager: bool | None = Field(
        None, description="Skip graph capture/compilation. Default: off on GPU, on on CPU."
    )
    limit_mm_per_prompt: dict[str, int] = Field(
        default_factory=lambda: {"image": 1},
        description="Most multimodal items per prompt; the pipeline sends one image at most.",
    )
    enable_prefix_caching: bool = Field(
        True, description="Reuse the KV cache of shared prompt prefixes (the image and "
        "system prompt are shared by all requests about one image)."
    )
    seed: int = Field(0, description="Engine seed.")
    download_dir: str | None = Field(
        None, description="Where to put weights fetched from the model hub (machines that "
        "reach it); default: the Hugging Face cache."
    )
    max_num_seqs: int | None = Field(None, ge=1, description="Most sequences per engine step.")
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra vLLM engine arguments, passed through as given (they win over "
        "everything above).",
    )
    device: Literal["auto", "cuda", "cpu"] = Field(
        "auto", description="Where the engine runs; 'auto' = CUDA when a GPU is visible."
    )
    # -- the OpenAI-compatible API backend ------------------------------------------------
    backend: Literal["vllm", "openai"] = Field(
        "vllm", description="vllm = vLLM engines in Ray actors; openai = an OpenAI-compatible "
        "endpoint (`vllm serve`, OpenAI, DashScope, ...), called from the engine actors.")
    api_url: str | None = Field(None, description="Base URL of the API (openai backend), "
                                "e.g. http://host:8000/v1.")
    model_name: str | None = Field(None, description="Model name the API serves; default: "
                                   "`model`.")
    api_key_env: str = Field("SCALECAP_API_KEY", description="Environment variable holding "
                             "the API key; DF_API_KEY (DataFlow-MM's) is read when it is unset.")
    request_timeout_s: float = Field(1800.0, gt=0, description="Timeout of one API request.")
    max_retries: int = Field(5, ge=0, description="Retries of a request that failed with a "
                             "rate limit (429), a server error (5xx), a timeout or a broken "
                             "connection, with exponential backoff and jitter (the openai "
                             "client's own).")
    max_concurrent_requests: int = Field(10, ge=1, description="Requests in flight per "
                                         "replica (DataFlow-MM's max_workers).")
    requests_per_second: float | None = Field(None, gt=0, description="Request rate limit, "
                                              "shared by all replicas of this model.")
    tokens_per_minute: float | None = Field(None, gt=0, description="Token rate limit (prompt "
                                            "+ output), shared by all replicas.")
    send_image_urls: bool = Field(False, description="Send an image that came from an "
                                  "http(s) URL as that URL, for the API to fetch, instead of "
                                  "the loaded image (the API's own resizing then applies).")

    @model_validator(mode="after")
    def _check_backend(self) -> EngineConfig:
        if self.backend == "openai" and not self.api_url:
            raise ValueError("api_url is required with backend 'openai'")
        return self

    @property
    def gpus_per_replica(self) -> int:
        """GPUs one copy of the engine occupies: the single place this is derived."""
        return self.tensor_parallel_size * self.pipeline_parallel_size
