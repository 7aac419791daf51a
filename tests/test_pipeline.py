import subprocess
import sys

import pyarrow as pa
import pytest

from scalecap_ray.config import ScaleCapConfig, load_config
from scalecap_ray.engine.pool import route
from scalecap_ray.pipeline import (
    RECORD_FIELDS,
    StagePlan,
    check_columns,
    plan_caption_job,
    plan_scalecap_job,
)
from scalecap_ray.runner import finalize
from scalecap_ray.stages.batch import BOOKKEEPING
from scalecap_ray.stages.load import LoadStage
from scalecap_ray.stages.questions import QuestionsStage


def test_scalecap_plan_stages_roles_and_one_shared_engine():
    plan = plan_scalecap_job(ScaleCapConfig(), run_id="r1")
    assert [s.name for s in plan.stages] == ["load", "caption", "verify", "questions", "answer",
                                             "integrate"]
    assert [s.role for s in plan.stages] == [None, "vlm", "vlm", "llm", "vlm", "llm"]
    vlm_spec, _ = plan.engines["vlm"]
    llm_spec, _ = plan.engines["llm"]
    assert vlm_spec is llm_spec and vlm_spec.names == ("scalecap-r1-vlm-0",)


def test_second_filter_and_separate_models():
    cfg = load_config(None, ["second_filter=true", "llm.model=/m/big",
                             "llm.tensor_parallel_size=4", "vlm.replicas=3"])
    plan = plan_scalecap_job(cfg, run_id="r2")
    assert [s.name for s in plan.stages][-2:] == ["filter", "integrate"]
    vlm, llm = plan.engines["vlm"][0], plan.engines["llm"][0]
    assert len(vlm.names) == 3 and llm.names == ("scalecap-r2-llm-0",)
    assert plan.engines["llm"][1].gpus_per_replica == 4


def test_stage_settings_reach_the_stages():
    cfg = load_config(None, ["max_answer_tokens=99", "stages.answer.temperature=0.5",
                             "max_questions=3", "verify_mode=yes_no", "tau_sentence=0.3"])
    stages = {s.name: s for s in plan_scalecap_job(cfg).stages}
    assert stages["answer"].kwargs["sampling"].max_tokens == 99
    assert stages["answer"].kwargs["sampling"].temperature == 0.5
    assert stages["questions"].kwargs["max_questions"] == 3
    assert stages["verify"].kwargs["mode"] == "yes_no" and stages["verify"].kwargs["tau"] == 0.3


def test_caption_plan_writes_the_requested_column():
    plan = plan_caption_job(ScaleCapConfig(), prompt="Say it.", output_key="alt")
    caption = plan.stages[-1]
    assert caption.kwargs["output"] == "alt" and caption.kwargs["prompt"] == "Say it."
    assert set(plan.engines) == {"vlm"}


def test_column_check_catches_misordered_stages():
    cfg = ScaleCapConfig()
    bad = [StagePlan("load", LoadStage, {}, cfg.stages.load),
           StagePlan("questions", QuestionsStage, {}, cfg.stages.questions, "llm")]
    with pytest.raises(ValueError, match="questions reads \\['golden_sentences'\\]"):
        check_columns(bad)


def test_planning_has_no_side_effects(tmp_path):
    code = ("from scalecap_ray.pipeline import plan_scalecap_job; "
            "from scalecap_ray.config import ScaleCapConfig; "
            "plan_scalecap_job(ScaleCapConfig()); import ray, sys; "
            "sys.exit(1 if ray.is_initialized() or 'vllm' in sys.modules else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_routing_is_stable_and_spreads():
    assert route("abc", 5, 4) == route("abc", 0, 4)
    assert {route(f"img{i}", 0, 4) for i in range(64)} == {0, 1, 2, 3}
    assert [route(None, i, 3) for i in range(4)] == [0, 1, 2, 0]


def test_finalize_builds_the_seed_record_and_totals():
    usage = [{"stage": "caption", "requests": 1, "prompt_tokens": 10, "cached_tokens": 2,
              "output_tokens": 5, "seconds": 0.1},
             {"stage": "verify", "requests": 2, "prompt_tokens": 30, "cached_tokens": 0,
              "output_tokens": 2, "seconds": 0.2}]
    rows = [{"id": "a", "image_bytes": b"x", "init_caption": "A cup.",
             "golden_sentences": ["A cup."], "object_questions": ["Q"],
             "position_questions": ["P"], "qa_answers_filtered": ["ans"],
             "final_caption": "Final.", "error": None, "error_stage": None, "stage_usage": usage},
            {"id": "b", "image_bytes": None, "init_caption": None, "golden_sentences": None,
             "object_questions": None, "position_questions": None, "qa_answers_filtered": None,
             "final_caption": None, "error": "b.png: missing", "error_stage": "load",
             "stage_usage": []}]
    schema = pa.schema({"id": pa.string(), "image_bytes": pa.binary(), **RECORD_FIELDS,
                        **BOOKKEEPING})
    out = finalize(pa.Table.from_pylist(rows, schema=schema), job="scalecap")
    assert "image_bytes" not in out.column_names
    assert out.column_names[-7:] == ["error", "error_stage", "stage_usage", "requests",
                                     "prompt_tokens", "cached_tokens", "output_tokens"]
    good, bad = out.to_pylist()
    assert good["scalecap_record"] == {"init_caption": "A cup.", "golden_sentences": ["A cup."],
                                       "object_questions": ["Q"], "position_questions": ["P"],
                                       "qa_answers_filtered": ["ans"], "final_caption": "Final."}
    assert (good["requests"], good["prompt_tokens"], good["cached_tokens"],
            good["output_tokens"]) == (3, 40, 2, 7)
    assert bad["scalecap_record"]["golden_sentences"] == []
    assert bad["scalecap_record"]["final_caption"] is None and bad["requests"] == 0
