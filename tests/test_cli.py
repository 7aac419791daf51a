"""The command line, end to end: a real local Ray, a real vLLM engine, Parquet out."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from tests.conftest import EXAMPLES, REPO


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "scalecap_ray", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def write_input(tmp_path, extra_lines: list[str]) -> str:
    images = tmp_path / "in"
    shutil.copytree(EXAMPLES / "images", images / "images")
    lines = (EXAMPLES / "images.jsonl").read_text().splitlines() + extra_lines
    (images / "not_an_image.png").write_text("plain text, not pixels")
    path = images / "input.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.engine
def test_caption_job_writes_one_row_per_input(tmp_path, smoke_model_dir):
    extra = [json.dumps({"image": "images/does_not_exist.png"}),
             json.dumps({"image": "not_an_image.png"}),
             "{broken json"]
    src = write_input(tmp_path, extra)
    out = tmp_path / "out"
    proc = run_cli("caption", "--smoke", "--input", src, "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"output: {out}" in proc.stdout
    rows = pq.read_table(out).to_pylist()
    n_examples = len((EXAMPLES / "images.jsonl").read_text().splitlines())
    assert len(rows) == n_examples + len(extra)  # rows in == rows out
    good = [r for r in rows if r["error"] is None]
    assert len(good) == n_examples
    assert all(r["caption"] and r["output_tokens"] > 0 and r["prompt_tokens"] > 0 for r in good)
    assert len({r["id"] for r in rows}) == len(rows)
    bad = {r["image"]: r for r in rows if r["error"] is not None}
    assert bad["images/does_not_exist.png"]["error_stage"] == "load"
    assert "does_not_exist.png" in bad["images/does_not_exist.png"]["error"]
    assert "not a decodable image" in bad["not_an_image.png"]["error"]
    (broken,) = [r for r in rows if r["error_stage"] == "read"]
    assert "not valid JSON" in broken["error"]
    assert "image_bytes" not in pq.read_schema(next(out.glob("*.parquet"))).names


def test_unknown_config_key_is_rejected_before_any_work(tmp_path):
    proc = run_cli("caption", "--input", "x.jsonl", "--output", str(tmp_path / "o"),
                   "--set", "vlm.no_such_field=1")
    assert proc.returncode == 2
    assert "no_such_field" in proc.stderr and "Extra inputs are not permitted" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_smoke_model_command_writes_a_checkpoint(tmp_path):
    proc = run_cli("smoke-model", str(tmp_path / "m"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m" / "model.safetensors").is_file()


def test_config_command_prints_the_resolved_config(tmp_path):
    import yaml

    from scalecap_ray.config import ScaleCapConfig

    proc = run_cli("config", "--set", "llm.model=/models/big", "--set", "second_filter=true")
    assert proc.returncode == 0, proc.stderr
    cfg = ScaleCapConfig.model_validate(yaml.safe_load(proc.stdout))
    assert cfg.llm.model == "/models/big" and cfg.second_filter
    assert cfg.prompts == ScaleCapConfig().prompts  # multi-line prompts round-trip


def test_input_and_resume_problems_are_refused_before_any_work(tmp_path):
    proc = run_cli("caption", "--input", str(tmp_path / "nothing.jsonl"), "--output",
                   str(tmp_path / "o"))
    assert proc.returncode == 2 and "no such file or folder" in proc.stderr
    src = tmp_path / "in.jsonl"
    src.write_text('{"image": "a.png"}\n')
    out = tmp_path / "out"
    out.mkdir()
    (out / "_scalecap_run.json").write_text(json.dumps(
        {"job": "scalecap", "payload": "scalecap_record", "settings": {}, "runs": []}))
    proc = run_cli("caption", "--input", str(src), "--output", str(out))
    assert proc.returncode == 2 and "holds a 'scalecap' job, not 'caption'" in proc.stderr
    assert "--overwrite" in proc.stderr


def test_export_of_a_folder_without_a_run(tmp_path):
    proc = run_cli("export", str(tmp_path))
    assert proc.returncode == 2 and "not a scalecap-ray output" in proc.stderr


def test_plan_shows_placement_and_rejects_what_cannot_run(tmp_path):
    node = '[{"cpus": 96, "gpus": 8, "accelerator_type": "H100"}]'
    ok = run_cli("plan", "--config", "cluster/node-8gpu.yaml", "--cluster-resources", node)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "llm: Qwen/Qwen2-72B-Instruct, 1 replica(s), each a STRICT_PACK placement group " \
           "of 4 GPU bundle(s)" in ok.stdout
    assert "vlm: Qwen/Qwen2.5-VL-7B-Instruct, 4 replica(s), each 1 GPU" in ok.stdout
    assert "fits: yes" in ok.stdout
    small = '[{"count": 2, "cpus": 32, "gpus": 4, "accelerator_type": "H100"}]'
    bad = run_cli("plan", "--config", "cluster/node-8gpu.yaml", "--set",
                  "llm.tensor_parallel_size=8", "--cluster-resources", small)
    assert bad.returncode == 2
    assert "cannot run: llm: tensor_parallel_size x pipeline_parallel_size = 8 GPUs per " \
           "replica, but the largest node has 4 GPU(s)" in bad.stdout
    broken = run_cli("plan", "--cluster-resources", '[{"cpus": 4, "gpu": 1}]')
    assert broken.returncode == 2 and "gpu" in broken.stderr


def test_plan_with_a_profile_suggests_the_replica_split(tmp_path):
    pilot = {"rows": {"written": 200},
             "config": {"vlm": {"model": "Qwen/Qwen2.5-VL-7B-Instruct"},
                        "llm": {"model": "Qwen/Qwen2-72B-Instruct", "tensor_parallel_size": 4},
                        "stages": {"integrate": {"batch_size": 32, "concurrency": 4}}},
             "timing": {"streaming_s": 100.0,
                        "engines": {"vlm": {"busy_s": 100.0}, "llm": {"busy_s": 200.0}}}}
    (tmp_path / "_manifest.json").write_text(json.dumps(pilot))
    node = '[{"count": 2, "cpus": 96, "gpus": 8, "accelerator_type": "H100"}]'
    proc = run_cli("plan", "--config", "cluster/node-8gpu.yaml", "--cluster-resources", node,
                   "--profile", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fits: yes" in proc.stdout  # the configured placement comes first
    # 0.5 replica-s an image for the VLM, 1 for a 4-GPU LLM replica: 2 x 8 GPUs hold 3
    # LLM groups (3 images/s), which 2 VLM replicas keep up with; as configured (4 + 1),
    # 1 image/s.  A fourth LLM group does not fit, so 2 GPUs stay free.
    assert "split: vlm=2 llm=3 -> about 3.00 images/s, limited by llm (as configured: " \
           "about 1.00 images/s); 2 of 16 GPUs left free" in proc.stdout
    assert "--set vlm.replicas=2 --set llm.replicas=3" in proc.stdout
    # The pilot's integrate actors sent 4 x 32 images to one LLM replica; three replicas
    # get as many when the config's 4 integrate actors send 4 x 32 x 3 / 4 = 96 each.
    assert proc.stdout.rstrip().endswith("--set stages.integrate.batch_size=96")
    wrong = run_cli("plan", "--config", "cluster/node-8gpu.yaml", "--cluster-resources", node,
                    "--profile", str(tmp_path / "missing.json"))
    assert wrong.returncode == 2 and "missing.json: cannot read it" in wrong.stderr
    assert "fits:" not in wrong.stdout  # checked before anything is planned


def test_run_checks_the_placement_before_reading_or_starting_anything(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "--smoke", "--input", str(EXAMPLES / "images.jsonl"), "--output",
                   str(out), "--set", "vlm.num_gpus=1", "--address", "local")
    assert proc.returncode == 2
    assert "each replica needs 1 GPU(s), the cluster has none" in proc.stderr
    assert "starting vLLM" not in proc.stderr + proc.stdout
    assert not out.exists()  # the output folder is not touched either


def test_api_backend_without_a_url_is_a_config_error(tmp_path):
    proc = run_cli("run", "--backend", "openai", "--input", str(EXAMPLES / "images.jsonl"),
                   "--output", str(tmp_path / "o"))
    assert proc.returncode == 2 and "api_url is required with backend 'openai'" in proc.stderr


@pytest.mark.engine
def test_ctrl_c_stops_a_run_with_a_message_not_a_traceback(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scalecap_ray", "run", "--smoke", "--quiet", "--input",
         str(EXAMPLES / "images.jsonl"), "--output", str(tmp_path / "out")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A suite started in the background (`make test &`) inherits SIGINT ignored, and
        # Python then never turns it into KeyboardInterrupt: give the run a terminal's.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        seen = []
        for line in proc.stderr:  # wait until the engines are up and rows flow
            seen.append(line)
            if "engine ready" in line:
                break
        assert any("engine ready" in line for line in seen), "".join(seen[-30:])
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "scalecap-ray: interrupted" in err and "same --output resumes" in err
    assert "Traceback" not in err and "wrote" not in out
