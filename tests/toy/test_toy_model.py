"""The committed toy checkpoint: what the recipe says it is, and what it does in vLLM."""

import json
import shutil

import pytest

from scalecap_ray.smoke.grammar import SPECIAL_TOKENS
from scalecap_ray.toy import CHECKPOINT, MARKER, RECIPE_VERSION, ToyModelMissing, toy_model_dir
from scalecap_ray.toy.model import build_tokenizer, hf_config
from scalecap_ray.toy.train import Recipe


def test_the_committed_checkpoint_is_the_recipes():
    marker = json.loads((CHECKPOINT / MARKER).read_text())
    recipe = Recipe()
    assert marker["recipe_version"] == RECIPE_VERSION
    assert marker["recipe"] == json.loads(json.dumps(recipe.to_json()))
    tok = build_tokenizer(recipe.seed)
    assert json.loads((CHECKPOINT / "tokenizer.json").read_text()) == json.loads(tok.to_str())
    vocab = -(-tok.get_vocab_size() // 64) * 64
    special = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    assert json.loads((CHECKPOINT / "config.json").read_text()) == hf_config(
        recipe.sizes, vocab, special)
    assert sum(f.stat().st_size for f in CHECKPOINT.iterdir()) <= 5 * 1024 * 1024


def test_a_checkpoint_of_another_recipe_is_refused(tmp_path):
    copy = tmp_path / "toy"
    shutil.copytree(CHECKPOINT, copy)
    assert toy_model_dir(copy) == copy
    marker = json.loads((copy / MARKER).read_text())
    (copy / MARKER).write_text(json.dumps({**marker, "recipe_version": "0"}))
    with pytest.raises(ToyModelMissing, match="recipe version 0, but this code trains"):
        toy_model_dir(copy)
    (copy / MARKER).unlink()
    with pytest.raises(ToyModelMissing, match="train one with `scalecap-ray toy-model DIR`"):
        toy_model_dir(copy)


@pytest.mark.engine
def test_vllm_runs_the_model_as_transformers_does(toy_engine):
    """Same greedy replies from vLLM (the pipeline's engine) and transformers (training):
    the chat template, image processing and positions agree."""
    import random

    from scalecap_ray.engine.types import ChatRequest, Sampling
    from scalecap_ray.toy import tasks
    from scalecap_ray.toy.batches import Encoder, image_bytes
    from scalecap_ray.toy.checkpoint import load_model
    from scalecap_ray.toy.infer import generate

    rng = random.Random(11)
    examples = [tasks.caption_image(rng) for _ in range(3)] + [tasks.object_answer(rng),
                                                               tasks.final(rng)]
    model, tok = load_model(toy_model_dir())
    expected = generate(model, Encoder(tok), examples, max_new_tokens=64)
    requests = [ChatRequest(ex.prompt, image=None if ex.scene is None else
                            image_bytes(ex.scene, ex.image_seed), image_key=str(i))
                for i, ex in enumerate(examples)]
    got = [r.text for r in toy_engine.chat(requests, Sampling(max_tokens=64))]
    assert got == expected
    assert all(got)
