"""The DataFlow-MM facade reproduces the seeds' usage examples on the smoke model."""

import json
import shutil
from pathlib import Path

import pytest

from scalecap_ray.dataflow import (
    FileStorage,
    ImageCaptionGenerate,
    ImageScaleCaptionGenerate,
    ImageScaleCaptionGenerateConfig,
    LocalModelVLMServing_vllm,
)
from tests.conftest import EXAMPLES

SEED_RECORD_FIELDS = {"init_caption", "golden_sentences", "object_questions",
                      "position_questions", "qa_answers_filtered", "final_caption"}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    shutil.copytree(EXAMPLES / "images", tmp_path / "images")
    monkeypatch.chdir(tmp_path)  # DataFlow-MM resolves image paths from the current folder
    return tmp_path


def test_a_row_failed_late_keeps_what_it_produced_beside_the_error():
    from scalecap_ray.dataflow import _record

    partial = {"init_caption": "A cup is on a table.", "golden_sentences": ["A cup."],
               "object_questions": ["Describe more details about the cup."],
               "position_questions": ["Describe more details about the position of the cup."],
               "qa_answers_filtered": [], "final_caption": None}
    record = _record({"error": "integrate: the model returned an empty final caption",
                      "scalecap_record": partial})
    assert record == {**partial, "final_caption": "",
                      "error": "integrate: the model returned an empty final caption"}
    nothing = dict.fromkeys(partial, None) | {"golden_sentences": [], "object_questions": [],
                                              "position_questions": [],
                                              "qa_answers_filtered": []}
    failed_early = _record({"error": "load: x.png: missing", "scalecap_record": nothing})
    assert failed_early["init_caption"] == "error" and failed_early["golden_sentences"] == []


def test_get_desc_in_both_languages():
    assert "ScaleCap" in ImageScaleCaptionGenerate.get_desc("en")
    assert "黄金句" in ImageScaleCaptionGenerate.get_desc()  # zh is the default


def test_storage_steps_like_dataflow(tmp_path):
    first = tmp_path / "in.jsonl"
    first.write_text('{"image": "a.png"}\n')
    storage = FileStorage(first_entry_file_name=str(first), cache_path=str(tmp_path / "c"),
                          file_name_prefix="p", cache_type="jsonl")
    assert storage.step().read() == [{"image": "a.png"}]
    written = storage.write([{"image": "a.png", "x": 1}])
    assert written.name == "p_step1.jsonl"
    assert storage.step().read() == [{"image": "a.png", "x": 1}]
    with pytest.raises(ValueError, match="cache_type"):
        FileStorage(first_entry_file_name=str(first), cache_type="parquet")


@pytest.mark.engine
def test_scalecap_operator_seed_example(workdir, smoke_model_dir, ray_local):
    lines = [json.dumps({"image": f"images/{p.name}"})
             for p in sorted((workdir / "images").iterdir())][:3]
    lines.append(json.dumps({"image": "images/absent.png"}))
    (workdir / "scalecap.jsonl").write_text("\n".join(lines) + "\n")

    # The seed's example, with the smoke model in place of Qwen2.5-VL-3B, sampling as
    # DataFlow-MM does: rows whose golden sentences yield no instruction still get a caption.
    model = LocalModelVLMServing_vllm(hf_model_name_or_path=str(smoke_model_dir),
                                      vllm_temperature=0.7, vllm_top_p=0.9)
    cfg = ImageScaleCaptionGenerateConfig(tau_sentence=0.15, max_questions=20,
                                          max_init_tokens=1024, max_answer_tokens=256,
                                          second_filter=False)
    operator = ImageScaleCaptionGenerate(vlm_serving=model, config=cfg)
    storage = FileStorage(first_entry_file_name="scalecap.jsonl", cache_path="./cache",
                          file_name_prefix="scalecap", cache_type="jsonl")
    out = operator.run(storage=storage.step(), image_key="image", output_key="scalecap_record")

    rows = [json.loads(x) for x in Path(out).read_text(encoding="utf-8").splitlines()]
    assert [r["image"] for r in rows] == [json.loads(x)["image"] for x in lines]  # order kept
    for row in rows[:3]:
        record = row["scalecap_record"]
        assert set(record) == SEED_RECORD_FIELDS
        assert record["init_caption"] and record["golden_sentences"] and record["final_caption"]
        assert len(record["position_questions"]) == len(record["object_questions"])
    # With this sampling the smoke model's replies to P2 hold no instruction for some rows.
    assert any(not row["scalecap_record"]["object_questions"] for row in rows[:3])
    assert rows[3]["scalecap_record"]["init_caption"] == "error"
    assert "absent.png" in rows[3]["scalecap_record"]["error"]


@pytest.mark.engine
def test_caption_operator_with_lists_of_images(workdir, smoke_model_dir, ray_local):
    names = sorted(p.name for p in (workdir / "images").iterdir())[:2]
    (workdir / "caption.jsonl").write_text(
        "\n".join(json.dumps({"image": [f"./images/{n}"]}) for n in names) + "\n")
    serving = LocalModelVLMServing_vllm(hf_model_name_or_path=str(smoke_model_dir),
                                        vllm_max_tokens=64)
    storage = FileStorage(first_entry_file_name="caption.jsonl", cache_path="./cache_local",
                          file_name_prefix="caption", cache_type="jsonl")
    out = ImageCaptionGenerate(serving).run(storage=storage.step(), multi_modal_key="image",
                                            output_key="caption")
    rows = [json.loads(x) for x in Path(out).read_text(encoding="utf-8").splitlines()]
    assert [r["image"] for r in rows] == [[f"./images/{n}"] for n in names]
    assert all(r["caption"] for r in rows)
