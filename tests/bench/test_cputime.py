"""The benchmarks' CPU accounting: a process tree's CPU seconds, summed by kind of
process (what runs beside the engine on a machine with few cores)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from common import run_measured

# Burns `seconds` of CPU, then stays alive long enough to be sampled after it.
BURN = ("import sys, time\n"
        "while time.process_time() < float(sys.argv[1]):\n"
        "    pass\n"
        "time.sleep(1.5)\n")
# The root burns 0.3 s, then starts a child titled like a Ray Data stage actor.
ROOT = ("import subprocess, sys, time\n"
        "while time.process_time() < 0.3:\n"
        "    pass\n"
        f"child = subprocess.Popen([sys.executable, '-c', {BURN!r}, '1.0', "
        "'ray::MapWorker(x)'])\n"
        "sys.exit(child.wait())\n")


def test_cpu_seconds_of_the_root_and_its_children_are_summed_by_kind():
    proc, wall, cpu = run_measured([sys.executable, "-c", ROOT], "driver")
    assert proc.returncode == 0, proc.stderr
    assert wall >= 1.3
    # The child's title puts it with the stage actors; the root is what the caller named.
    assert 0.9 <= cpu["stage actors"] <= 1.6
    assert 0.25 <= cpu["driver"] <= 1.0
    assert set(cpu) == {"stage actors", "driver"}


def test_a_failing_command_is_returned_not_raised():
    proc, _, cpu = run_measured([sys.executable, "-c", "raise SystemExit(3)"], "driver")
    assert proc.returncode == 3
    assert set(cpu) <= {"driver"}
