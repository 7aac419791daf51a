"""Per-model engine settings: one small builder per model family.

A builder gets the engine config and returns the vLLM arguments that family needs.  Add a
family by adding a function and an entry in `MODEL_FAMILIES`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scalecap_ray.engine.config import EngineConfig


def _qwen_vl(cfg: EngineConfig) -> dict[str, Any]:
    # Qwen-VL processors also accept video; the pipeline never sends any, so reserve no
    # encoder budget for it.
    return {"limit_mm_per_prompt": {"video": 0, **cfg.limit_mm_per_prompt}}


def _vision_language(cfg: EngineConfig) -> dict[str, Any]:
    return {"limit_mm_per_prompt": dict(cfg.limit_mm_per_prompt)}


def _text_only(cfg: EngineConfig) -> dict[str, Any]:
    # A text model has no multimodal limits to set; vLLM rejects them for such models.
    return {}


MODEL_FAMILIES: dict[str, Callable[[EngineConfig], dict[str, Any]]] = {
    "qwen2_vl": _qwen_vl,
    "qwen2_5_vl": _qwen_vl,
    "qwen3_vl": _qwen_vl,
    "vision_language": _vision_language,
    "text": _text_only,
}


def family_from_hf_config(hf_config: dict[str, Any]) -> str:
    """The family of a model from its Hugging Face `config.json` contents."""
    model_type = hf_config.get("model_type", "")
    if model_type in MODEL_FAMILIES:
        return model_type
    return "vision_language" if "vision_config" in hf_config else "text"


def read_hf_config(model: str) -> dict[str, Any]:
    """The model's `config.json`, from a local folder or the hub (the engine fetches the
    weights from the same place right after)."""
    local = Path(model) / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    from transformers import PretrainedConfig

    config_dict, _ = PretrainedConfig.get_config_dict(model)
    return config_dict


def family_engine_args(cfg: EngineConfig, hf_config: dict[str, Any] | None = None) -> dict:
    """vLLM arguments for the model's family; reads the model's config when `family` is
    'auto' and none is given."""
    family = cfg.family
    if family == "auto":
        family = family_from_hf_config(hf_config if hf_config is not None
                                       else read_hf_config(cfg.model))
    try:
        builder = MODEL_FAMILIES[family]
    except KeyError:
        raise ValueError(
            f"engine config: unknown model family {family!r} for model {cfg.model!r}; "
            f"known: {', '.join(sorted(MODEL_FAMILIES))}"
        ) from None
    return builder(cfg)
