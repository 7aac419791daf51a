"""Model engines: configuration, request/result types and the vLLM wrapper."""

from scalecap_ray.engine.config import EngineConfig
from scalecap_ray.engine.types import ChatEngine, ChatRequest, ChatResult, Sampling, TokenLogprob

__all__ = ["ChatEngine", "ChatRequest", "ChatResult", "EngineConfig", "Sampling", "TokenLogprob"]
