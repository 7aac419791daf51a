"""The command line, end to end: a real local Ray, a real vLLM engine, Parquet out."""

import json
import os
import shutil
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
