"""Benchmark 1's serialization measure: every block hop and engine call of the job is
recorded and moved through a real local Ray, and bad sizes are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scalecap_ray.config import load_config
from scalecap_ray.pipeline import plan_scalecap_job

BENCH = Path(__file__).resolve().parents[2] / "bench"


def serialization(tmp_path: Path, model: Path, images: int):
    return subprocess.run(
        [sys.executable, str(BENCH / "serialization.py"), "--images", str(images),
         "--model", str(model), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300)


def test_every_block_hop_and_engine_call_is_moved_through_ray(tmp_path, smoke_model_dir):
    proc = serialization(tmp_path, smoke_model_dir, 6)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "out" / "serialization.json").read_text())
    stages = plan_scalecap_job(load_config(None, [])).stages
    # 6 images fit one batch of every stage: one block into each stage, one to the writer.
    assert r["blocks"]["count"] == len(stages) + 1
    model_stages = [s for s in stages if s.role is not None]
    assert r["engine_calls"]["count"] >= len(model_stages)
    assert r["engine_calls"]["requests"] > 6 * 4
    # The blocks carry the images from the load stage on: 6 PNGs of a few KiB at every hop.
    assert r["blocks"]["mb"] > 0.01 and r["engine_calls"]["mb"] > 0.01
    parts = r["blocks"]["seconds"] + r["engine_calls"]["seconds"]
    assert r["total_s"] == pytest.approx(parts, abs=2e-3)
    assert 0 < r["empty_call_ms"] < 1000
    assert f"| blocks into each stage and to the writer | {len(stages) + 1} |" in proc.stdout


def test_no_images_is_refused_with_the_reason(tmp_path, smoke_model_dir):
    proc = serialization(tmp_path, smoke_model_dir, 0)
    assert proc.returncode == 2
    assert "--images must be at least 1, got 0" in proc.stderr
    assert not (tmp_path / "out").exists()
