"""Engine busy time (`BusyClock`) and how the manifest sums it per engine."""

from __future__ import annotations

import pytest

from scalecap_ray.engine import pool
from scalecap_ray.io.manifest import engine_timing, summary_lines


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(pool.time, "monotonic", fake.monotonic)
    return fake


def test_overlapping_calls_count_once_and_idle_gaps_not_at_all(clock):
    busy = pool.BusyClock()
    clock.now += 5  # idle before the first call
    busy.enter(3)
    clock.now += 2
    busy.enter(4)  # overlaps the first: the engine is busy once, not twice
    clock.now += 1
    busy.leave()
    clock.now += 1
    busy.leave()
    clock.now += 10  # idle again
    snap = busy.snapshot()
    assert snap == {"up_s": 19.0, "busy_s": 4.0, "idle_before_first_s": 5.0,
                    "idle_after_last_s": 10.0, "calls": 2, "requests": 7}


def test_idle_between_calls_is_neither_before_the_first_nor_after_the_last(clock):
    busy = pool.BusyClock()
    clock.now += 2
    busy.enter(1)
    clock.now += 1
    busy.leave()
    clock.now += 7  # between calls
    busy.enter(1)
    clock.now += 1
    busy.leave()
    clock.now += 3
    snap = busy.snapshot()
    assert (snap["idle_before_first_s"], snap["busy_s"], snap["idle_after_last_s"]) == \
        (2.0, 2.0, 3.0)
    assert snap["up_s"] - snap["busy_s"] - 2.0 - 3.0 == 7.0


def test_an_engine_never_called_was_waiting_all_along(clock):
    busy = pool.BusyClock()
    clock.now += 4
    snap = busy.snapshot()
    assert (snap["idle_before_first_s"], snap["idle_after_last_s"], snap["busy_s"]) == \
        (4.0, 0.0, 0.0)


def test_a_call_in_flight_counts_up_to_now(clock):
    busy = pool.BusyClock()
    busy.enter(1)
    clock.now += 3
    assert busy.snapshot()["busy_s"] == 3.0
    assert busy.snapshot()["idle_after_last_s"] == 0.0  # still working
    busy.leave()
    clock.now += 3
    assert busy.snapshot()["busy_s"] == 3.0
    assert busy.snapshot()["idle_after_last_s"] == 3.0


def test_manifest_sums_replicas_and_reports_the_busy_share():
    timing = engine_timing({"engine_startup_s": 30.0, "streaming_s": 60.0, "engines": {
        "vlm": [{"up_s": 60.0, "busy_s": 45.0, "idle_before_first_s": 5.0,
                 "idle_after_last_s": 1.0, "calls": 9, "requests": 90},
                {"up_s": 40.0, "busy_s": 35.0, "idle_before_first_s": 2.5,
                 "idle_after_last_s": 0.5, "calls": 7, "requests": 70}],
        "llm": [{"up_s": 0.0, "busy_s": 0.0, "idle_before_first_s": 0.0,
                 "idle_after_last_s": 0.0, "calls": 0, "requests": 0}]}})
    assert timing["engines"]["vlm"] == {"replicas": 2, "up_s": 100.0, "busy_s": 80.0,
                                        "busy_share": 0.8, "idle_before_first_s": 7.5,
                                        "idle_after_last_s": 1.5, "requests": 160}
    assert timing["engines"]["llm"]["busy_share"] == 0.0
    manifest = {"rows": {"input": 1, "output": 1, "ok": 1, "errors": 0, "written": 1},
                "seconds": 95.0, "images_per_second": 0.01, "resumed": False,
                "errors_by_stage": {}, "stages": {}, "timing": timing}
    line = summary_lines(manifest)[1]
    assert line == ("  engines: start-up 30.0 s, streaming 60.0 s; vlm busy 80% (2 replica(s)), "
                    "llm busy 0% (1 replica(s))")


def test_a_replica_lost_after_the_rows_fails_neither_stats_nor_shutdown(ray_local, caplog):
    from scalecap_ray.engine.config import EngineConfig
    from tests.standin import StandInEngine

    spec = pool.EngineSpec(role="vlm", names=("stats-test-0", "stats-test-1"))
    engines = pool.EnginePool(spec, EngineConfig(model="stand-in"),
                              pool.EnginePlacement(num_cpus=0), factory=StandInEngine)
    try:
        assert len(engines.start(timeout_s=120)) == 2
        assert len(engines.stats()) == 2
        ray_local.kill(ray_local.get_actor("stats-test-1"), no_restart=True)
        with caplog.at_level("WARNING", logger=pool.__name__):
            (alive,) = engines.stats()
        assert alive["up_s"] > 0
        assert "vlm engine: a replica failed stats: " in caplog.text
    finally:
        engines.shutdown()
    assert "a replica failed shutdown" in caplog.text
