"""Helpers the benchmark scripts share: the model to run, a pipeline run as the user
starts it (a `scalecap-ray run` process), and results written as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def model_path(model: str | None) -> str:
    """`model`, or the smoke model (built on first use)."""
    if model:
        return model
    from scalecap_ray.smoke import ensure_smoke_model

    return str(ensure_smoke_model())


def run_pipeline(listing: Path, out: Path, model: str, settings: list[str] = ()) -> dict:
    """One `scalecap-ray run` in a fresh process; its manifest plus the process's wall time
    (what the user waits for: imports, Ray, engines, the rows, the manifest)."""
    args = [sys.executable, "-m", "scalecap_ray", "run", "--quiet", "--input", str(listing),
            "--output", str(out), "--set", f"vlm.model={model}", "--set", f"llm.model={model}"]
    for s in settings:
        args += ["--set", s]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"the run failed ({' '.join(args)}):\n{proc.stderr[-3000:]}")
    manifest = json.loads((out / "_manifest.json").read_text())
    return {"wall_s": round(wall, 2), "manifest": manifest}


def save(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
