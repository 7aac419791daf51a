"""Engines placed on simulated GPUs: `ray.init(num_gpus=8)` makes Ray schedule 8 GPUs
that are not there, and a stand-in takes vLLM's place in the engine actors (see
tests/standin.py).  Each scenario runs in a subprocess with a Ray of its own."""

import json
import subprocess
import sys

import pyarrow.parquet as pq

from tests.standin import REPO, TEXT

SMALL_STAGES = [f"stages.{s}.concurrency=1" for s in
                ("load", "caption", "verify", "questions", "answer", "filter", "integrate")]


def scenario(name: str, overrides: list[str], *output: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "tests.standin", name, json.dumps(overrides),
                           *output], cwd=REPO, capture_output=True, text=True, timeout=400)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_eight_gpu_node_replicas_and_tensor_parallel_group():
    found = scenario("pool", [])
    vlm, (llm,) = found["replicas"]["vlm"], found["replicas"]["llm"]
    # Four VLM replicas, one distinct GPU each, no placement group.
    assert len(vlm) == 4 and all(r["bundles"] is None for r in vlm)
    vlm_gpus = sorted(g for r in vlm for g in r["gpu_ids"])
    assert len(vlm_gpus) == 4 and len(set(vlm_gpus)) == 4
    # The TP-4 LLM: its actor holds no GPU; its placement group has one bundle per rank
    # (the first with the actor's CPU), and a task per bundle gets a GPU of its own.
    assert llm["gpu_ids"] == []
    assert llm["bundles"] == [{"CPU": 1.0, "GPU": 1.0}, {"GPU": 1.0}, {"GPU": 1.0},
                              {"GPU": 1.0}]
    rank_gpus = sorted(g for ids in llm["rank_gpu_ids"] for g in ids)
    assert len(rank_gpus) == 4 and not set(rank_gpus) & set(vlm_gpus)
    # Stage-side clients see every started replica; shutdown removes the groups.
    assert found["remote_ready"] == {"vlm": 4, "llm": 1}
    assert found["groups_left"] == []


def test_elastic_replicas_start_with_the_minimum_and_use_what_fits():
    one_model = ["llm.model=Qwen/Qwen2.5-VL-7B-Instruct", "llm.tensor_parallel_size=1"]
    found = scenario("elastic", ["vlm.replicas=[2, 10]", *one_model])
    assert found["started"] >= 2 and found["ready"] == 8
    # The plan counts the CPUs of the two load actors that a run would add: it expects 6.
    assert any("6 of up to 10 replica(s) fit now" in n for n in found["notes"])
    assert found["answers"] == [TEXT] * 16
    # Shutdown also removes the two replicas that never found a GPU.
    assert len(found["actors"]) == 10 and {a["state"] for a in found["actors"]} == {"DEAD"}


def test_scalecap_job_runs_on_the_eight_gpu_layout(tmp_path):
    out = tmp_path / "out"
    found = scenario("run", [*SMALL_STAGES, "input.limit=3"], str(out))
    assert found["rows"] == 3
    names = sorted(a["name"] for a in found["actors"])
    assert len(names) == 5 and sum("-llm-" in n for n in names) == 1
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 3 and all(r["error"] is None for r in rows)
    assert all(r["final_caption"] == TEXT for r in rows)
    assert all(r["golden_sentences"] for r in rows)


def test_a_plan_the_node_cannot_hold_is_refused_before_any_engine(tmp_path):
    out = tmp_path / "out"
    found = scenario("reject", ["vlm.replicas=5"], str(out))
    assert "only 4 of the minimum 5 replica(s) fit" in found["error"]
    assert "engines:" in found["error"]  # the whole plan is shown with the reason
    assert found["actors"] == []
    assert found["output_files"] == []  # the output folder is not touched either


def test_an_engine_that_cannot_start_fails_the_run_with_its_own_error(tmp_path):
    found = scenario("broken", [*SMALL_STAGES, "input.limit=3"], str(tmp_path / "out"))
    assert "EngineStartError" in found["error"]
    assert "the engine did not start: no model at" in found["error"]
    # No row was sent anywhere: no part file.
    assert not [f for f in found["output_files"] if f.endswith(".parquet")]
    # Every replica is stopped, including those started while the ids were checked.
    assert found["actors"] and {a["state"] for a in found["actors"]} == {"DEAD"}
