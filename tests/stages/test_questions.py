from scalecap_ray.engine.types import Sampling
from scalecap_ray.stages.questions import QuestionsStage
from tests.scripted import ScriptedEngine, make_batch

REPLIES = {
    "The man wears a suit.": "Describe more details about the man.\n"
                             "2. Describe more details about the suit.",
    "The man is near a bed.": "- Describe more details about the Man.\n"
                              "- Describe more details about the bed.\nDone.",
    "Nothing here.": "I cannot find objects.",
}


def run(golden_rows, max_questions=20):
    engine = ScriptedEngine(lambda req, s: REPLIES[req.prompt.split("|")[1]])
    stage = QuestionsStage(engine, prompt="P2|{}|end", max_questions=max_questions,
                           sampling=Sampling(max_tokens=77), system="sys")
    return engine, stage(make_batch([{"golden_sentences": g} for g in golden_rows])).to_pylist()


def test_one_request_per_golden_sentence_merged_in_order():
    engine, (out,) = run([["The man wears a suit.", "The man is near a bed."]])
    assert out["object_questions"] == ["Describe more details about the man.",
                                       "Describe more details about the suit.",
                                       "Describe more details about the bed."]
    assert out["position_questions"] == [
        "Describe more details about the position of the man.",
        "Describe more details about the position of the suit.",
        "Describe more details about the position of the bed."]
    assert out["object_question_sources"] == [0, 0, 1]
    requests = engine.requests
    assert [r.prompt for r in requests] == ["P2|The man wears a suit.|end",
                                            "P2|The man is near a bed.|end"]
    assert all(r.image is None and r.system == "sys" for r in requests)
    assert engine.calls[0][1].max_tokens == 77


def test_cap_applies_per_image():
    _, (out,) = run([["The man wears a suit.", "The man is near a bed."]], max_questions=2)
    assert len(out["object_questions"]) == 2 and len(out["position_questions"]) == 2


def test_no_instruction_goes_on_with_none():
    # The paper and DataFlow-MM integrate such a row from its golden sentences alone.
    _, (bare, good) = run([["Nothing here."], ["The man wears a suit."]])
    assert bare["error"] is None and bare["error_stage"] is None
    assert bare["no_questions"] is True
    assert bare["object_questions"] == bare["position_questions"] == []
    assert bare["object_question_sources"] == []
    assert good["no_questions"] is False and len(good["object_questions"]) == 2
