import math

import pytest

from scalecap_ray.engine.types import ChatResult, Sampling, TokenLogprob
from scalecap_ray.stages.answer import AnswerStage
from scalecap_ray.stages.filter import FilterStage
from tests.scripted import ScriptedEngine, make_batch

OBJ = ["Describe more details about the cup.", "Describe more details about the dog."]
POS = ["Describe more details about the position of the cup.",
       "Describe more details about the position of the dog."]
ANSWERS = {OBJ[0]: "The cup is red.", OBJ[1]: "",
           POS[0]: "The cup is on the left.", POS[1]: "A dragon guards it."}


def question_rows():
    return make_batch([{"object_questions": OBJ, "position_questions": POS,
                        "image_bytes": b"px", "image_hash": "h"}])


def test_one_request_per_question_image_first_object_then_position():
    engine = ScriptedEngine(lambda req, s: ANSWERS[req.prompt])
    out = AnswerStage(engine, sampling=Sampling(max_tokens=256))(question_rows()).to_pylist()[0]
    assert engine.calls[0][1].max_tokens == 256
    assert [r.prompt for r in engine.requests] == OBJ + POS
    assert all(r.image == b"px" and r.image_key == "h" for r in engine.requests)
    assert out["answers"] == [ANSWERS[q] for q in OBJ + POS]
    assert out["answer_kept"] == [True, False, True, True]  # empty answers are never kept
    assert out["qa_answers_filtered"] == ["The cup is red.", "The cup is on the left.",
                                          "A dragon guards it."]
    assert out["answer_scores"] is None  # no second filter


def test_a_row_without_questions_sends_nothing_and_keeps_nothing():
    engine = ScriptedEngine(lambda req, s: ANSWERS[req.prompt])
    rows = make_batch([{"object_questions": [], "position_questions": [],
                        "image_bytes": b"px", "image_hash": "h"},
                       {"object_questions": OBJ, "position_questions": POS,
                        "image_bytes": b"px", "image_hash": "h2"}])
    bare, full = AnswerStage(engine, sampling=Sampling(max_tokens=8))(rows).to_pylist()
    assert [r.image_key for r in engine.requests] == ["h2"] * 4
    assert bare["error"] is None and bare["answers"] == bare["qa_answers_filtered"] == []
    assert bare["stage_usage"] == []  # no call was made for it
    assert [u["requests"] for u in full["stage_usage"]] == [4]


def answered_rows():
    return make_batch([{"object_questions": OBJ, "position_questions": POS,
                        "answers": [ANSWERS[q] for q in OBJ + POS],
                        "image_bytes": b"px", "image_hash": "h"}])


def contrastive_reply(req, sampling):
    """With the image, every word about the cup is likely; dragons are not in the image."""
    tokens, pos = [], 0
    for word in req.assistant.split(" "):
        start = req.assistant.index(word, pos)
        grounded = req.image is not None and "dragon" not in req.assistant
        tokens.append(TokenLogprob(start, start + len(word), math.log(0.8 if grounded else 0.4)))
        pos = start + len(word)
    return ChatResult(assistant_logprobs=tokens)


def test_second_filter_contrastive():
    engine = ScriptedEngine(contrastive_reply)
    stage = FilterStage(engine, mode="contrastive", grounding_prompt="{}?", tau=0.15,
                        yes_threshold=0.5)
    out = stage(answered_rows()).to_pylist()[0]
    scores = out["answer_scores"]
    assert scores[0] == pytest.approx(0.4) and scores[1] is None and scores[3] == 0.0
    assert out["answer_kept"] == [True, False, True, False]
    assert out["qa_answers_filtered"] == ["The cup is red.", "The cup is on the left."]
    # Two scoring requests per non-empty answer, the question as prompt; none for "".
    assert len(engine.requests) == 6
    assert engine.requests[0].prompt == OBJ[0] and engine.requests[0].assistant == ANSWERS[OBJ[0]]


def test_second_filter_yes_no():
    def reply(req, sampling):
        p = 0.2 if "dragon" in req.prompt else 0.9
        return ChatResult(first_token_logprobs={"yes": math.log(p), "no": math.log(1 - p)})

    engine = ScriptedEngine(reply)
    stage = FilterStage(engine, mode="yes_no", grounding_prompt="Grounded: '{}'?", tau=0.15,
                        yes_threshold=0.5)
    out = stage(answered_rows()).to_pylist()[0]
    assert out["answer_scores"] == [pytest.approx(0.9), None, pytest.approx(0.9),
                                    pytest.approx(0.2)]
    assert out["qa_answers_filtered"] == ["The cup is red.", "The cup is on the left."]
    assert [r.prompt for r in engine.requests] == [
        "Grounded: 'The cup is red.'?", "Grounded: 'The cup is on the left.'?",
        "Grounded: 'A dragon guards it.'?"]
