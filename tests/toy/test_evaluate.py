"""`scalecap-ray eval` on hand-made outputs whose scores were worked out by hand."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalecap_ray.cli import main
from scalecap_ray.toy.world import Scene, ToyObject

TRUTH = {
    "a": Scene((ToyObject("table", "red", "large", 2, 1), ToyObject("cup", "blue", "small", 1, 1))),
    "b": Scene((ToyObject("tree", "green", "large", 1, 0),)),
    "d": Scene((ToyObject("boat", "red", "small", 0, 0),)),
}
S, L = pa.string(), pa.list_(pa.string())
SCHEMA = pa.schema({"id": S, "init_caption": S, "sentences": L, "golden_sentences": L,
                    "final_caption": S, "answers": L, "answer_kept": pa.list_(pa.bool_()),
                    "no_questions": pa.bool_(), "error": S, "requests": pa.int64(),
                    "prompt_tokens": pa.int64(), "output_tokens": pa.int64()})
ROWS = [
    {"id": "a", "init_caption": "A table is at the bottom. A cup is on the table. "
                                "A cat is on the left.",
     "sentences": ["A table is at the bottom.", "A cup is on the table.", "A cat is on the left."],
     "golden_sentences": ["A table is at the bottom.", "A cup is on the table."],
     "final_caption": "A large red table is at the bottom. "
                      "A small blue cup is in the centre, on the table.",
     "answers": ["The table is large and red.", "The cup is small and green.",
                 "The table is at the bottom.", "The cup is in the centre, on the table."],
     "answer_kept": [True, False, True, True], "no_questions": False, "error": None,
     "requests": 10, "prompt_tokens": 100, "output_tokens": 20},
    {"id": "b", "init_caption": "A tree is on the left. A bird is on the tree.",
     "sentences": ["A tree is on the left.", "A bird is on the tree."],
     "golden_sentences": ["A tree is on the left.", "A bird is on the tree."],
     "final_caption": "A large green tree is on the left. A bird is on the tree.",
     "answers": ["The tree is large and green.", "There is no bird.", "The tree is on the left.",
                 "There is no bird."],
     "answer_kept": [True] * 4, "no_questions": False, "error": None,
     "requests": 8, "prompt_tokens": 80, "output_tokens": 16},
    {"id": "c", "init_caption": "A cup is on the left.", "sentences": None,
     "golden_sentences": None, "final_caption": None, "answers": None, "answer_kept": None,
     "no_questions": None, "error": None, "requests": 1, "prompt_tokens": 5,
     "output_tokens": 5},
    {"id": "d", "init_caption": None, "sentences": None, "golden_sentences": None,
     "final_caption": None, "answers": None, "answer_kept": None, "no_questions": None,
     "error": "load: d.png: missing", "requests": 0, "prompt_tokens": 0, "output_tokens": 0},
]


@pytest.fixture
def scored(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    pq.write_table(pa.Table.from_pylist(ROWS, schema=SCHEMA), out / "part-x-00000.parquet")
    truth = tmp_path / "truth.jsonl"
    truth.write_text("".join(json.dumps({"id": k, **v.to_json()}) + "\n"
                             for k, v in TRUTH.items()))
    result = tmp_path / "result.json"
    assert main(["eval", str(out), "--truth", str(truth), "--json", str(result)]) == 0
    return json.loads(result.read_text())


def test_counts_of_rows(scored):
    assert (scored["rows"], scored["scored"], scored["not_in_truth"], scored["failed"]) == \
        (4, 3, 1, 1)
    assert scored["per_image"] == {"requests": 6.0, "prompt_tokens": 60.0,
                                   "output_tokens": 12.0}


def test_initial_captions(scored):
    init = scored["init"]
    assert (init["captions"], init["chair_i"], init["chair_s"], init["recall"]) == \
        (2, 0.4, 1.0, 1.0)
    assert init["hallucinated_by_cause"] == {"prior": 1, "misrecognition": 1}
    assert (init["facts_correct_per_caption"], init["facts_wrong_per_caption"]) == (1.5, 1.0)
    assert init["facts_correct"] == {"colour": 0, "size": 0, "position": 2, "on": 1,
                                     "beside": 0}
    assert init["facts_wrong"] == {"colour": 0, "size": 0, "position": 1, "on": 1, "beside": 0}


def test_final_and_golden_captions(scored):
    final = scored["final"]
    assert (final["chair_i"], final["chair_s"], final["recall"]) == (0.25, 0.5, 1.0)
    assert (final["facts_correct_per_caption"], final["facts_wrong_per_caption"]) == (5.0, 0.5)
    assert final["facts_correct"] == {"colour": 3, "size": 3, "position": 3, "on": 1,
                                      "beside": 0}
    assert (scored["golden"]["chair_i"], scored["golden"]["chair_s"]) == (0.25, 0.5)


def test_what_the_checks_dropped(scored):
    assert scored["verify"] == {"items": 5, "wrong": 2, "dropped": 1, "precision": 1.0,
                                "recall": 0.5}
    assert scored["answers"] == {"items": 8, "wrong": 1, "dropped": 1, "precision": 1.0,
                                 "recall": 1.0}


def test_bad_truth_and_empty_output_are_refused_with_the_reason(tmp_path, capsys):
    truth = tmp_path / "truth.jsonl"
    truth.write_text(json.dumps({"id": "a", **TRUTH["a"].to_json()}) + "\n")
    (tmp_path / "out").mkdir()
    assert main(["eval", str(tmp_path / "out"), "--truth", str(truth)]) == 2
    assert "no output part files" in capsys.readouterr().err
    truth.write_text('{"id": "a", "objects": [{"kind": "cup"}]}\n')
    assert main(["eval", str(tmp_path / "out"), "--truth", str(truth)]) == 2
    assert f"{truth}:1: not a truth record (missing 'colour')" in capsys.readouterr().err


def test_toy_scenes_writes_images_input_and_truth_the_same_for_a_seed(tmp_path):
    assert main(["toy-scenes", "--seed", "3", "--count", "5", "--out", str(tmp_path / "a")]) == 0
    assert main(["toy-scenes", "--seed", "3", "--count", "5", "--out", str(tmp_path / "b")]) == 0
    inputs = [json.loads(x) for x in (tmp_path / "a" / "scenes.jsonl").read_text().splitlines()]
    truth = [json.loads(x) for x in (tmp_path / "a" / "truth.jsonl").read_text().splitlines()]
    assert [r["id"] for r in inputs] == [r["id"] for r in truth] and len(inputs) == 5
    for row in inputs:
        a, b = (tmp_path / d / row["image"] for d in ("a", "b"))
        assert a.read_bytes() == b.read_bytes()
    assert all(1 <= len(t["objects"]) <= 4 for t in truth)


def test_toy_scenes_refuses_an_empty_set(tmp_path, capsys):
    assert main(["toy-scenes", "--seed", "3", "--count", "0", "--out", str(tmp_path)]) == 2
    assert "--count must be at least 1" in capsys.readouterr().err


def test_rows_not_yet_finalized_are_priced_from_their_stage_usage():
    from scalecap_ray.toy.evaluate import evaluate_rows

    usage = [{"stage": "caption", "requests": 1, "prompt_tokens": 50, "output_tokens": 9},
             {"stage": "verify", "requests": 2, "prompt_tokens": 120, "output_tokens": 2}]
    rows = [{"id": "b", "init_caption": "A tree is on the left.", "stage_usage": usage},
            {"id": "d", "init_caption": "A boat is at the top left.", "stage_usage": None}]
    assert evaluate_rows(rows, TRUTH)["per_image"] == {
        "requests": 1.5, "prompt_tokens": 85.0, "output_tokens": 5.5}


def test_sentences_are_grouped_by_what_they_name():
    from scalecap_ray.toy.metrics import sentence_group

    scene = TRUTH["a"]  # a table with a cup on it
    assert sentence_group(scene, "A table is at the bottom.") == "true"
    assert sentence_group(scene, "A cup is on the table.") == "partner"
    assert sentence_group(TRUTH["b"], "A bird is on the tree.") == "prior"
    assert sentence_group(scene, "A boat is on the left.") == "misrecognition"
    assert sentence_group(scene, "It is sunny.") is None
