import pytest

from scalecap_ray.config import ModelDeployment
from scalecap_ray.resources.sizing import gpu_memory_gb, weights_size


def test_known_models_use_their_parameter_count():
    size = weights_size(ModelDeployment(model="Qwen/Qwen2.5-VL-72B-Instruct"))
    assert size.source == "known model size" and size.gb == pytest.approx(146.8)


@pytest.mark.parametrize(("model", "dtype", "gb"), [
    ("org/SomeVLM-13B-Chat", "auto", 26.0),
    ("org/SomeVLM-13B-Chat", "float32", 52.0),
    ("org/Tiny-1.5b", "auto", 3.0),
    ("org/Big-70B-AWQ", "auto", 35.0),
    ("org/Big-70B-FP8", "auto", 70.0),
])
def test_unknown_models_are_estimated_from_the_name(model, dtype, gb):
    size = weights_size(ModelDeployment(model=model, dtype=dtype))
    assert size.source == "estimated from the name" and size.gb == pytest.approx(gb)


def test_explicit_size_wins_and_unknowable_is_none():
    assert weights_size(ModelDeployment(model="org/whatever", weights_gb=12.5)).gb == 12.5
    assert weights_size(ModelDeployment(model="org/no-size-here")) is None


def test_local_checkpoints_are_measured(tmp_path):
    (tmp_path / "model-00001.safetensors").write_bytes(b"x" * 3000)
    (tmp_path / "model-00002.safetensors").write_bytes(b"x" * 2000)
    (tmp_path / "config.json").write_text("{}")
    size = weights_size(ModelDeployment(model=str(tmp_path)))
    assert size.source == "checkpoint files" and size.gb == pytest.approx(5000 / 1e9)


def test_gpu_memory_by_accelerator_type():
    assert gpu_memory_gb("H100") == 80 and gpu_memory_gb("A100-40G") == 40
    assert gpu_memory_gb("unheard-of") is None and gpu_memory_gb(None) is None
