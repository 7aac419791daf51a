"""Benchmark 5 on a real engine: modes measured one after another on one engine, each
from a cold prefix cache, counted as a run's manifest counts them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from cost_per_mode import measure, table

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.engine


def test_each_mode_is_counted_from_a_cold_cache(local_engine, smoke_model_dir):
    modes = {"contrastive, paper": [], "yes_no, single": ["verify_mode=yes_no",
                                                          "integrate_mode=single"]}
    results = measure(ROOT / "examples" / "images.jsonl", str(smoke_model_dir), local_engine,
                      modes)
    contrastive, yes_no = results.values()
    assert contrastive["images"] == yes_no["images"] == 6
    # The second mode's captions are the first mode's prompts again: only a reset cache
    # makes them miss.
    assert contrastive["cache_hit_rate"]["caption"] == yes_no["cache_hit_rate"]["caption"] == 0
    # Scoring prefills are not served from the cache; yes/no questions about an image are.
    assert contrastive["cache_hit_rate"]["verify"] == 0 < yes_no["cache_hit_rate"]["verify"]
    assert "| yes_no, single |" in table(results)
