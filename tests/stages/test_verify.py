import math
import re

import pytest

from scalecap_ray.engine.types import ChatResult, Sampling, TokenLogprob
from scalecap_ray.stages.verify import VerifyStage
from tests.scripted import ScriptedEngine, make_batch

GROUNDED = {"cup", "red", "table"}  # what the scripted "image" shows
CAPTION = "A red cup stands on the table. A purple dragon flies above. It is here."


def scorer(req, sampling: Sampling) -> ChatResult:
    """Scores each word: likely with the image when the image shows it, 0.3 otherwise."""
    text = req.assistant
    tokens = []
    for m in re.finditer(r"\s*\S+?(?=[.\s]|$)|\.", text):
        word = m.group().strip().lower()
        p = 0.9 if req.image is not None and word in GROUNDED else 0.3
        tokens.append(TokenLogprob(m.start(), m.end(), math.log(p)))
    return ChatResult(prompt_tokens=50, assistant_logprobs=tokens)


def grounding(req, sampling: Sampling) -> ChatResult:
    grounded = any(w in req.prompt.lower() for w in GROUNDED)
    p_yes = 0.8 if grounded else 0.1
    # "eyes" gets the most probability and must never count as yes.
    lp = {"Yes": math.log(p_yes), " no": math.log(1 - p_yes), "eyes": math.log(0.95)}
    return ChatResult(prompt_tokens=30, output_tokens=1,
                      first_token_logprobs={k: v for k, v in lp.items()
                                            if k in sampling.first_token_logprobs})


def stage(engine, mode="contrastive", **kw):
    args = {"mode": mode, "caption_prompt": "P1", "grounding_prompt": "Is '{}' true?",
            "tau": 0.15, "yes_threshold": 0.5, **kw}
    return VerifyStage(engine, **args)


def rows(*captions):
    return make_batch([{"init_caption": c, "image_bytes": b"px", "image_hash": f"h{i}"}
                       for i, c in enumerate(captions)])


def test_contrastive_keeps_sentences_the_image_supports():
    engine = ScriptedEngine(scorer)
    out = stage(engine)(rows(CAPTION)).to_pylist()[0]
    assert out["sentences"] == ["A red cup stands on the table.", "A purple dragon flies above.",
                                "It is here."]
    s = out["sentence_scores"]
    assert s[0] == pytest.approx(0.6) and s[1] == pytest.approx(0.0) and s[2] is None
    assert out["golden_sentences"] == ["A red cup stands on the table."]
    (requests, sampling), = engine.calls
    assert [r.image is not None for r in requests] == [True, False]
    assert all(r.assistant == CAPTION and r.prompt == "P1" for r in requests)
    assert sampling.max_tokens == 1


def test_yes_no_decides_from_first_token_probabilities():
    engine = ScriptedEngine(grounding)
    out = stage(engine, mode="yes_no")(rows(CAPTION)).to_pylist()[0]
    assert out["sentence_scores"] == [pytest.approx(0.8), pytest.approx(0.1), pytest.approx(0.1)]
    assert out["golden_sentences"] == ["A red cup stands on the table."]
    (requests, sampling), = engine.calls
    assert [r.prompt for r in requests] == [f"Is '{s}' true?" for s in out["sentences"]]
    assert all(r.image == b"px" and r.image_key == "h0" for r in requests)
    assert sampling.max_tokens == 1 and "yes" in sampling.first_token_logprobs


def test_nothing_passes_keeps_whole_caption_unless_disabled():
    caption = "A purple dragon flies. It is here."
    assert stage(ScriptedEngine(scorer))(rows(caption)).to_pylist()[0]["golden_sentences"] \
        == [caption]
    out = stage(ScriptedEngine(scorer), keep_all_if_none=False)(rows(caption)).to_pylist()[0]
    assert out["golden_sentences"] == [] and out["error"] is None


def test_a_failed_request_fails_only_its_row():
    def reply(req, sampling):
        if "dragon" in req.assistant:
            return ChatResult(error="VLLMValidationError: prompt too long")
        return scorer(req, sampling)

    out = stage(ScriptedEngine(reply))(rows(CAPTION, "The red cup.")).to_pylist()
    assert out[0]["error_stage"] == "verify" and "prompt too long" in out[0]["error"]
    assert out[0]["golden_sentences"] is None
    assert out[1]["golden_sentences"] == ["The red cup."] and out[1]["error"] is None
    assert out[0]["stage_usage"][-1]["requests"] == 2
