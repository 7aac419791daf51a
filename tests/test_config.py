import pytest
from pydantic import ValidationError

from scalecap_ray import prompts
from scalecap_ray.config import ScaleCapConfig, apply_overrides, load_config


def test_seed_names_and_defaults():
    cfg = ScaleCapConfig()
    assert (cfg.tau_sentence, cfg.max_questions, cfg.max_init_tokens, cfg.max_answer_tokens,
            cfg.second_filter) == (0.15, 20, 1024, 256, False)
    assert cfg.verify_mode == "contrastive" and cfg.integrate_mode == "paper"
    assert cfg.prompts.caption == prompts.CAPTION_PROMPT
    assert cfg.shared_engine()  # both roles default to the same model


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("vlm:\n  model: /models/vl\n  replicas: 2\nllm:\n  model: /models/big\n"
                    "  tensor_parallel_size: 4\nstages:\n  answer:\n    batch_size: 4\n")
    cfg = load_config(path, ["llm.tensor_parallel_size=8", "second_filter=true",
                             "stages.caption.concurrency=[1, 4]"])
    assert cfg.vlm.model == "/models/vl" and cfg.vlm.replicas == 2
    assert cfg.llm.tensor_parallel_size == 8 and cfg.llm.gpus_per_replica == 8
    assert cfg.second_filter is True and cfg.stages.answer.batch_size == 4
    assert cfg.stages.caption.concurrency == (1, 4)
    assert not cfg.shared_engine()


@pytest.mark.parametrize("override", ["no_such=1", "vlm.nope=2", "stages.nope.batch_size=1",
                                      "verify_mode=maybe", "stages.caption.concurrency=[3, 1]",
                                      "prompts.questions=no slot here"])
def test_bad_values_are_rejected(override):
    with pytest.raises(ValidationError):
        load_config(None, [override])


def test_override_syntax_errors():
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(ValueError, match="not a section"):
        apply_overrides({"a": 1}, ["a.b=2"])


def test_top_level_yaml_must_be_a_mapping(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(path)
