import json

import pytest

from scalecap_ray import smoke as smoke_model
from scalecap_ray.smoke import build_smoke_model, ensure_smoke_model, fingerprint


def test_build_is_deterministic(tmp_path):
    a = build_smoke_model(tmp_path / "a")
    b = build_smoke_model(tmp_path / "b")
    assert fingerprint(a) == fingerprint(b)
    names = {p.name for p in a.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "chat_template.jinja", "preprocessor_config.json"} <= names


def test_checkpoint_shapes_match_config(tmp_path):
    from safetensors.numpy import load_file

    out = build_smoke_model(tmp_path / "m")
    cfg = json.loads((out / "config.json").read_text())
    text = cfg["text_config"]
    assert text["hidden_size"] // text["num_attention_heads"] == 64  # CPU attention needs it
    weights = load_file(str(out / "model.safetensors"))
    assert weights["model.language_model.embed_tokens.weight"].shape == (
        text["vocab_size"], text["hidden_size"])
    assert weights["lm_head.weight"].shape == (text["vocab_size"], text["hidden_size"])
    # The special-token ids in the config are the tokenizer's.
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert cfg["image_token_id"] == tok.token_to_id("<|image_pad|>")
    assert cfg["vision_start_token_id"] == tok.token_to_id("<|vision_start|>")
    assert tok.get_vocab_size() <= text["vocab_size"]


def test_grammar_words_are_single_tokens(tmp_path):
    from tokenizers import Tokenizer

    out = build_smoke_model(tmp_path / "m")
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    for words in smoke_model.WORD_CLASSES.values():
        for word in words:
            assert len(tok.encode(word, add_special_tokens=False).ids) == 1, word


def test_chat_template_renders_qwen_format(tmp_path):
    import jinja2

    template = jinja2.Environment().from_string(smoke_model.CHAT_TEMPLATE)
    text = template.render(
        messages=[{"role": "user",
                   "content": [{"type": "image"}, {"type": "text", "text": "Hi."}]}],
        add_generation_prompt=True,
    )
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Hi.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_ensure_caches_by_recipe_version(tmp_path, monkeypatch):
    target = tmp_path / "cache" / "smoke"
    first = ensure_smoke_model(target)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert ensure_smoke_model(target) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    # A different recipe version invalidates the cache.
    monkeypatch.setattr(smoke_model, "RECIPE_VERSION", "test-other")
    ensure_smoke_model(target)
    stamp_file = json.loads((target / "scalecap_smoke.json").read_text())
    assert stamp_file["recipe_version"] == "test-other"


def test_default_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SCALECAP_CACHE", str(tmp_path))
    assert smoke_model.default_cache_dir().parent == tmp_path


@pytest.mark.engine
def test_vllm_generates_sentences_and_instructions(local_engine):
    """Greedy decoding on the smoke model writes sentences, and the instruction prompt
    gets "Describe more details about ..." lines: later stages depend on both."""
    from scalecap_ray import prompts
    from scalecap_ray.engine import ChatRequest, Sampling
    from tests.conftest import drawn_image

    captions = local_engine.chat(
        [ChatRequest(prompts.CAPTION_PROMPT, image=drawn_image(i)) for i in range(4)],
        Sampling(max_tokens=200))
    texts = [c.text for c in captions]
    assert all(t.rstrip().endswith(".") for t in texts), texts
    assert len(set(texts)) > 1  # the image matters
    replies = local_engine.chat(
        [ChatRequest(prompts.QUESTIONS_PROMPT.format(t.split(".")[0] + ".")) for t in texts],
        Sampling(max_tokens=200))
    assert all("Describe more details about" in r.text for r in replies), [r.text for r in replies]
