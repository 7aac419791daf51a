import pytest
from pydantic import ValidationError

from scalecap_ray.engine.config import EngineConfig
from scalecap_ray.engine.models import MODEL_FAMILIES, family_engine_args, family_from_hf_config


def test_defaults_and_derived_resources():
    cfg = EngineConfig()
    assert cfg.model == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert cfg.enable_prefix_caching and cfg.gpus_per_replica == 1
    assert EngineConfig(tensor_parallel_size=4, pipeline_parallel_size=2).gpus_per_replica == 8


@pytest.mark.parametrize("bad", [{"tensor_parallel_size": 0}, {"gpu_memory_utilization": 1.5},
                                 {"unknown_key": 1}, {"device": "tpu"}])
def test_rejects_bad_values(bad):
    with pytest.raises(ValidationError):
        EngineConfig(**bad)


def test_family_detection_and_builders():
    assert family_from_hf_config({"model_type": "qwen2_5_vl"}) == "qwen2_5_vl"
    assert family_from_hf_config({"model_type": "llava", "vision_config": {}}) == "vision_language"
    assert family_from_hf_config({"model_type": "qwen2"}) == "text"
    assert family_engine_args(EngineConfig(family="text")) == {}
    assert family_engine_args(EngineConfig(family="vision_language")) == {
        "limit_mm_per_prompt": {"image": 1}}
    assert set(MODEL_FAMILIES) >= {"qwen2_vl", "qwen2_5_vl", "text"}


def test_auto_family_reads_the_models_config():
    assert family_engine_args(EngineConfig(), {"model_type": "qwen2"}) == {}


def test_unknown_family_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model family 'nope'"):
        family_engine_args(EngineConfig(family="nope"))
