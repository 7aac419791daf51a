"""Benchmark 1's middle side, Ray without Ray Data: the stage threads hand blocks on in
order, overlap, and stop on the first stage error without hanging."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from ray_floor import stream


def test_blocks_pass_every_stage_in_order_while_stages_overlap():
    running, most = set(), [0]
    lock = threading.Lock()

    def stage(name):
        def call(block):
            with lock:
                running.add(name)
                most[0] = max(most[0], len(running))
            time.sleep(0.05)
            with lock:
                running.discard(name)
            return [*block, name]
        return call

    out, seconds = stream([stage("a"), stage("b"), stage("c")], [[i] for i in range(5)])
    assert out == [[i, "a", "b", "c"] for i in range(5)]
    assert len(seconds) == 3 and all(s >= 5 * 0.05 for s in seconds)
    assert most[0] >= 2  # a later stage works on one block while an earlier one takes the next


@pytest.mark.timeout(30)  # a stage thread left waiting would hang the benchmark
def test_a_stage_error_is_raised_after_every_thread_stops():
    def fine(block):
        return block

    def broken(block):
        if block == 2:
            raise RuntimeError("engine died on block 2")
        return block

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="engine died on block 2"):
        stream([fine, broken, fine], list(range(6)))
    assert threading.active_count() == before


def test_no_blocks_and_no_stages():
    assert stream([lambda b: b], []) == ([], [0.0])
    assert stream([], [1, 2]) == ([1, 2], [])
