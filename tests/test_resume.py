"""Crash and resume for real: SIGKILL the driver mid-run and rerun; SIGKILL an engine
actor mid-run and let Ray restart it.  Every input id lands exactly once, and no reader
ever sees a partial part file."""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pyarrow.parquet as pq
import pytest

from tests.conftest import EXAMPLES, REPO
from tests.test_cli import run_cli

pytestmark = pytest.mark.engine
N_IMAGES = 24
# Part files and batches of two rows: the ScaleCap job then writes its parts over several
# seconds, and a kill lands mid-run.
SMALL_PARTS = ["--set", "output.rows_per_file=2"] + [
    arg for stage in ("load", "caption", "verify", "questions", "answer", "integrate")
    for arg in ("--set", f"stages.{stage}.batch_size=2")]


def make_input(tmp_path) -> str:
    src = tmp_path / "in"
    (src / "images").mkdir(parents=True)
    examples = sorted((EXAMPLES / "images").iterdir())
    lines = []
    for i in range(N_IMAGES):
        name = f"img{i:02d}.png"
        shutil.copy(examples[i % len(examples)], src / "images" / name)
        lines.append(json.dumps({"image": f"images/{name}"}))
    (src / "input.jsonl").write_text("\n".join(lines) + "\n")
    return str(src / "input.jsonl")


@contextlib.contextmanager
def running_until_first_part(src: str, out, log_path):
    """Start the job in its own process group, wait for its first part file, hand over
    the process; afterwards kill whatever of the group is left (Ray's processes)."""
    args = [sys.executable, "-m", "scalecap_ray", "run", "--smoke", "--input", src,
            "--output", str(out), *SMALL_PARTS]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            wait_for_parts(proc, out)
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def visible_parts(out) -> dict[str, int]:
    """What a reader sees: every part file must be complete and readable."""
    return {p.name: pq.read_metadata(p).num_rows for p in out.glob("part-*.parquet")}


def wait_for_parts(proc, out, timeout=300) -> dict[str, int]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the run ended before writing a part file"
        seen = visible_parts(out)
        if seen:
            return seen
        time.sleep(0.05)
    raise AssertionError("no part file appeared")


def check_exactly_once(out) -> list[dict]:
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == N_IMAGES and len({r["id"] for r in rows}) == N_IMAGES
    assert all(r["final_caption"] and r["error"] is None for r in rows)
    return rows


def test_driver_sigkill_then_rerun(tmp_path):
    src, out = make_input(tmp_path), tmp_path / "out"
    with running_until_first_part(src, out, tmp_path / "first.log") as proc:
        os.kill(proc.pid, signal.SIGKILL)  # the driver only
        proc.wait(timeout=30)
        time.sleep(1)
        visible_parts(out)  # whatever survived is whole
    before = {name: pq.read_table(out / name) for name in visible_parts(out)}
    assert 0 < sum(t.num_rows for t in before.values()) < N_IMAGES
    second = run_cli("run", "--smoke", "--input", src, "--output", str(out), *SMALL_PARTS)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already there" in second.stdout
    check_exactly_once(out)
    for name, table in before.items():  # rows done before are untouched
        assert pq.read_table(out / name).equals(table)
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


def engine_actor_processes() -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if cmd.startswith("ray::") and "EngineActor" in cmd:
            found.append(p)
    return found


def test_engine_actor_sigkill_is_survived(tmp_path):
    src, out = make_input(tmp_path), tmp_path / "out"
    with running_until_first_part(src, out, tmp_path / "run.log") as proc:
        (engine,) = [p for p in engine_actor_processes()
                     if proc.pid in {a.pid for a in p.parents()}]
        engine.kill()
        assert proc.wait(timeout=600) == 0
    log_text = (tmp_path / "run.log").read_text(errors="replace")
    assert f"wrote {N_IMAGES} row(s)" in log_text
    # The engine was loaded twice (by two actor processes) and calls were sent again.
    loaded = set(re.findall(r"EngineActor pid=(\d+)\).*Starting to load model", log_text))
    assert len(loaded) == 2 and "Task EngineActor.chat failed" in log_text
    check_exactly_once(out)
