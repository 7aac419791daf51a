import pytest

from scalecap_ray.engine.types import Sampling
from scalecap_ray.stages.integrate import IntegrateStage, detail_blocks
from tests.scripted import ScriptedEngine, make_batch

GOLDEN = ["A red cup is on a table.", "A dog sleeps."]
QUESTIONS = ["Describe more details about the cup.", "Describe more details about the table.",
             "Describe more details about the dog."]
SOURCES = [0, 0, 1]
ANSWERS = ["The cup is glossy.", "The table is oak.", "The dog is brown.",
           "The cup is left.", "The table is central.", "The dog is right."]
KEPT = [True, False, True, True, True, False]


def test_detail_blocks_follow_the_official_layout():
    objects, positions = detail_blocks(GOLDEN, QUESTIONS, SOURCES, ANSWERS, KEPT)
    assert objects == ("Sentence: A red cup is on a table.\n"
                       "Details about the cup: The cup is glossy.\n"
                       "Sentence: A dog sleeps.\n"
                       "Details about the dog: The dog is brown.")
    assert positions == ("Sentence: A red cup is on a table.\n"
                         "Position about the cup: The cup is left.\n"
                         "Position about the table: The table is central.\n"
                         "Sentence: A dog sleeps.")


def batch():
    return make_batch([{"golden_sentences": GOLDEN, "object_questions": QUESTIONS,
                        "object_question_sources": SOURCES, "answers": ANSWERS,
                        "answer_kept": KEPT,
                        "qa_answers_filtered": [a for a, k in zip(ANSWERS, KEPT, strict=True)
                                                if k]}])


def stage(engine, mode):
    return IntegrateStage(engine, mode=mode, object_prompt="OBJ[{}]", position_prompt="POS[{}]",
                          final_prompt="CTX[{}] O[{}] P[{}]", sampling=Sampling(max_tokens=99))


def reply(req, sampling):
    if req.prompt.startswith("OBJ["):
        return "objects summary"
    if req.prompt.startswith("POS["):
        return "positions summary"
    return "FINAL " + req.prompt


def test_paper_mode_summarises_objects_and_positions_then_integrates():
    engine = ScriptedEngine(reply)
    out = stage(engine, "paper")(batch()).to_pylist()[0]
    (first, _), (second, _) = engine.calls  # summaries in one call, the final in the next
    assert [r.prompt[:4] for r in first] == ["OBJ[", "POS["]
    assert "Details about the cup: The cup is glossy." in first[0].prompt
    assert "The table is oak." not in first[0].prompt  # filtered out
    (final,) = second
    assert final.prompt == ("CTX[A red cup is on a table.\nA dog sleeps.] "
                            "O[objects summary] P[positions summary]")
    assert out["final_caption"] == "FINAL " + final.prompt
    assert out["object_summary"] == "objects summary"
    assert [u["stage"] for u in out["stage_usage"]] == ["integrate", "integrate"]


def test_single_mode_passes_the_kept_answers_as_both_informations():
    engine = ScriptedEngine(reply)
    out = stage(engine, "single")(batch()).to_pylist()[0]
    (call,) = engine.calls
    details = "The cup is glossy.\nThe dog is brown.\nThe cup is left.\nThe table is central."
    assert call[0][0].prompt == f"CTX[{GOLDEN[0]}\n{GOLDEN[1]}] O[{details}] P[{details}]"
    assert out["object_summary"] is None and out["final_caption"].startswith("FINAL")


@pytest.mark.parametrize("mode", ["paper", "single"])
def test_empty_final_caption_is_a_row_error(mode):
    out = stage(ScriptedEngine(lambda r, s: "x" if r.prompt[0] != "C" else " "), mode)(batch())
    row = out.to_pylist()[0]
    assert row["error_stage"] == "integrate" and "empty final caption" in row["error"]


def test_a_row_without_questions_is_integrated_from_its_golden_sentences():
    rows = make_batch([{"golden_sentences": GOLDEN, "object_questions": [],
                        "object_question_sources": [], "answers": [], "answer_kept": [],
                        "qa_answers_filtered": []}])
    engine = ScriptedEngine(reply)
    out = stage(engine, "paper")(rows).to_pylist()[0]
    first, _ = engine.calls[0]
    assert first[0].prompt == "OBJ[Sentence: A red cup is on a table.\nSentence: A dog sleeps.]"
    assert out["error"] is None and out["final_caption"].startswith("FINAL CTX[A red cup")
