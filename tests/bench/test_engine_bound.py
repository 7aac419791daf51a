"""Benchmark 1 on the simulated engine: the bound and the pipeline send the same requests,
the comparison adds up, and a side that fails stops the benchmark with its error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def engine_bound(tmp_path: Path, model: Path, cost: Path | None, images: int = 6,
                 extra: tuple[str, ...] = ()):
    """The benchmark on the simulated engine, with this cost model (None: the default)."""
    return subprocess.run(
        [sys.executable, str(BENCH / "engine_bound.py"), "--images", str(images),
         "--model", str(model), "--factor", "0.5", "--out", str(tmp_path / "out"),
         *extra, "--simulated", *([str(cost)] if cost else [])],
        capture_output=True, text=True, timeout=600)


def test_all_sides_run_the_same_requests_on_the_simulated_engine(tmp_path, smoke_model_dir):
    proc = engine_bound(tmp_path, smoke_model_dir, None, extra=("--ray-floor",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "out" / "engine_bound_simulated.json").read_text())
    assert r["images"] == 6 and r["bound"]["ok"] == 6
    # Caption, verify, questions, answers and integration: several requests per image,
    # the same on both sides.
    assert r["requests"]["bound"] == r["requests"]["pipeline"] > 6 * 4
    assert r["ratio"] == pytest.approx(r["pipeline_s"] / r["bound_s"], abs=1e-3)
    # The split accounts for each side's whole wall time.
    for side, wall in ((0, r["bound_s"]), (1, r["pipeline_s"])):
        assert sum(v[side] for v in r["split_s"].values()) == pytest.approx(wall, abs=0.3)
    assert r["split_s"]["engine start-up"][0] == 0.0  # a simulated engine starts at once
    # The pipeline's idle engine time, split by when it fell, adds up to the split's.
    # (a simulated engine is up before the pass over the ids ends: that wait is not
    # streaming, so no part may come out negative)
    assert all(v >= -0.1 for v in r["engine_idle_s"].values()), r["engine_idle_s"]
    assert sum(r["engine_idle_s"].values()) == pytest.approx(
        r["split_s"]["engine idle while streaming"][1], abs=0.2)
    assert "Engine idle while streaming: " in proc.stdout
    assert "stage actors" in r["cpu_s"]["pipeline"]
    assert r["simulated"] == {"cost": str(BENCH / "reference_cost.json"), "factor": 0.5}
    assert "| engine busy |" in proc.stdout
    # Ray without Ray Data: the same requests through the job's engine actor, its split
    # accounting for its wall time, and no stage actors among its processes.
    floor = r["ray_floor"]
    assert floor["requests"] == r["requests"]["bound"] and floor["ok"] == 6
    assert floor["ratio"] == pytest.approx(floor["wall_s"] / r["bound_s"], abs=1e-3)
    assert sum(floor["split_s"].values()) == pytest.approx(floor["wall_s"], abs=0.3)
    assert "engine actor (engine front-end)" in floor["cpu_s"]
    assert "stage actors" not in floor["cpu_s"]
    assert "| seconds | bound | Ray, no Ray Data | pipeline | difference |" in proc.stdout


def test_a_bound_that_fails_stops_the_benchmark_with_its_error(tmp_path, smoke_model_dir):
    proc = engine_bound(tmp_path, smoke_model_dir, tmp_path / "missing-cost.json", images=2)
    assert proc.returncode != 0
    assert "the bound failed" in proc.stderr and "missing-cost.json" in proc.stderr
    assert not (tmp_path / "out" / "engine_bound_simulated.json").exists()
