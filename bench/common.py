"""Helpers the benchmark scripts share: the model to run, a pipeline run as the user
starts it (a `scalecap-ray run` process, with its CPU time by kind of process), and
results written as JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def model_path(model: str | None) -> str:
    """`model`, or the smoke model (built on first use)."""
    if model:
        return model
    from scalecap_ray.smoke import ensure_smoke_model

    return str(ensure_smoke_model())


# Kinds of process by title (first match wins), for CPU time by kind.
PROCESS_KINDS = (
    ("vLLM engine core and worker", r"^VLLM::"),
    ("engine actor (engine front-end)", r"EngineActor"),
    ("stage actors", r"MapWorker"),
    ("Ray system", r"raylet|gcs_server|dashboard|DashboardAgent|RuntimeEnvAgent|log_monitor"
                   r"|monitor\.py|forkserver"),
    ("idle Ray workers", r"^ray::IDLE"),  # started ahead by Ray, waiting for work
    ("Ray Data helpers and tasks", r"^ray::"),
)


class Sampler:
    """Calls `_sample` every `interval_s` on a thread of its own inside a `with` block."""

    def __init__(self, interval_s: float = 0.5):
        self.interval_s, self._stop = interval_s, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class CpuTime(Sampler):
    """CPU seconds (user + system) of a process and all its descendants, sampled twice a
    second while it runs, summed by kind of process: on a machine with few cores, every
    process beside the engine takes CPU from it."""

    def __init__(self, pid: int, root_kind: str, interval_s: float = 0.5):
        super().__init__(interval_s)
        self.pid, self.root_kind = pid, root_kind
        self.seen: dict[int, tuple[str, float]] = {}  # pid -> (kind, CPU s when last seen)

    def _kind(self, proc: psutil.Process) -> str:
        if proc.pid == self.pid:
            return self.root_kind
        title = " ".join(proc.cmdline()) or proc.name()
        return next((kind for kind, pattern in PROCESS_KINDS if re.search(pattern, title)),
                    "other")

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in procs:
            try:
                t = proc.cpu_times()
                self.seen[proc.pid] = (self._kind(proc), t.user + t.system)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for kind, seconds in self.seen.values():
            out[kind] = out.get(kind, 0.0) + seconds
        return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def run_measured(args: list[str], root_kind: str) -> tuple[subprocess.CompletedProcess, float,
                                                            dict[str, float]]:
    """`args` in a fresh process from the repository root: the finished process, its wall
    time and its CPU seconds by kind of process (`CpuTime`)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO)
    with CpuTime(proc.pid, root_kind) as cpu:
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    return (subprocess.CompletedProcess(args, proc.returncode, stdout, stderr), wall,
            cpu.by_kind())


def run_pipeline(listing: Path, out: Path, model: str, settings: list[str] = ()) -> dict:
    """One `scalecap-ray run` in a fresh process; its manifest plus the process's wall time
    (what the user waits for: imports, Ray, engines, the rows, the manifest) and CPU
    seconds by kind of process."""
    args = [sys.executable, "-m", "scalecap_ray", "run", "--quiet", "--input", str(listing),
            "--output", str(out), "--set", f"vlm.model={model}", "--set", f"llm.model={model}"]
    for s in settings:
        args += ["--set", s]
    proc, wall, cpu = run_measured(args, "driver")
    if proc.returncode != 0:
        raise SystemExit(f"the run failed ({' '.join(args)}):\n{proc.stderr[-3000:]}")
    manifest = json.loads((out / "_manifest.json").read_text())
    return {"wall_s": round(wall, 2), "cpu_s": cpu, "manifest": manifest}


def plan_and_rows(listing: Path, model: str, settings: Sequence[str] = ()):
    """The job's plan for `model` in both roles (plus `settings`), and the listing's rows
    as the pipeline reads them."""
    from scalecap_ray.config import load_config
    from scalecap_ray.io.records import record_row, to_table
    from scalecap_ray.pipeline import plan_scalecap_job

    cfg = load_config(None, [f"vlm.model={model}", f"llm.model={model}", *settings])
    lines = listing.read_text().splitlines()
    table = to_table([record_row(json.loads(line), str(listing), i + 1, 0,
                                 cfg.input.image_key, cfg.input.id_key)
                      for i, line in enumerate(lines)])
    return plan_scalecap_job(cfg), table


def stage_instance(stage, engine):
    """A plan's stage built in this process, its model calls going to `engine` (any object
    with a synchronous `chat`)."""
    kwargs = dict(stage.kwargs)
    if stage.role is not None:
        kwargs["engine"] = engine
    return stage.cls(**kwargs)


def run_stages(plan, table, engine) -> tuple[dict, object]:
    """Every stage of `plan` over all rows at once, in this process, on one engine with a
    synchronous `chat` (no Ray): seconds per stage, requests, rows ok; and the rows."""
    stages: dict[str, float] = {}
    for stage in plan.stages:
        t = time.perf_counter()
        table = stage_instance(stage, engine)(table)
        stages[stage.name] = round(time.perf_counter() - t, 3)
    return {"stages_s": stages,
            "engine_s": round(sum(v for k, v in stages.items() if k != "load"), 3),
            **outcome(table)}, table


def outcome(*tables) -> dict:
    """The engine requests the stages sent for the rows of `tables` (a whole table or
    its blocks), and the rows without an error."""
    requests = sum(e["requests"] for t in tables for u in t.column("stage_usage").to_pylist()
                   for e in u or [])
    return {"requests": requests, "ok": sum(t.column("error").null_count for t in tables)}


def save(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
