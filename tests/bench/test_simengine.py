"""The benchmarks' simulated engine and its calibration: answers the stages can parse,
the prefix cache it models, the time its cost model charges, and the fit that sets it."""

from __future__ import annotations

import asyncio
import math
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from calibrate import fit, vs_reference
from simengine import REFERENCE_COST, CostModel, SimulatedEngine

from scalecap_ray.config import Prompts
from scalecap_ray.engine.config import EngineConfig
from scalecap_ray.engine.types import ChatRequest, Sampling
from scalecap_ray.prompts import fill
from scalecap_ray.text.instructions import parse_instructions
from scalecap_ray.text.sentences import split_sentences

FAST = CostModel(step_s=0.0, prefill_s=0.0, decode_s=0.0, image_tokens=100,
                 caption_sentences=3)


def chat(engine, requests, sampling: Sampling | None = None):
    return asyncio.run(engine.chat(requests, sampling or Sampling()))


def test_replies_parse_like_a_models():
    p = Prompts()
    engine = SimulatedEngine(EngineConfig(model="m"), FAST, p)
    caption, = chat(engine, [ChatRequest(p.caption, image=b"x", image_key="a")])
    assert len(split_sentences(caption.text)) == 3
    question, = chat(engine, [ChatRequest(fill(p.questions, "A cup."))])
    assert len(parse_instructions(question.text)) == 1
    scored, = chat(engine, [ChatRequest("q", image=b"x", image_key="a", assistant="a cup")])
    assert [t.logprob for t in scored.assistant_logprobs] == [math.log(0.9)] * 4


def test_an_images_later_requests_reuse_its_tokens_but_scoring_does_not():
    engine = SimulatedEngine(EngineConfig(model="m"), FAST)
    first, second = chat(engine, [ChatRequest("Describe more details about the cup.",
                                              image=b"x", image_key="k")] * 2)
    assert first.cached_tokens == 0 and second.cached_tokens == 100
    scored, = chat(engine, [ChatRequest("q", image=b"x", image_key="k", assistant="a")])
    assert scored.cached_tokens == 0 and scored.prompt_tokens > 100


def test_a_batch_takes_the_steps_the_cost_model_charges(monkeypatch):
    slept: list[float] = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    cost = CostModel(step_s=1.0, prefill_s=0.01, decode_s=0.1, integrate_tokens=3)
    engine = SimulatedEngine(EngineConfig(model="m"), cost)
    monkeypatch.setattr("simengine.asyncio.sleep", fake_sleep)
    results = chat(engine, [ChatRequest("Summarize.")] * 2, Sampling(max_tokens=64))
    prefill = sum(r.prompt_tokens for r in results)
    # Step 1 prefills both prompts and decodes their first tokens; two more steps finish.
    assert slept == pytest.approx([1.0 + 0.01 * prefill + 0.2, 1.2, 1.2])


def test_the_fit_recovers_known_costs():
    truth = (0.003, 2e-5, 5e-5)
    rows = [{"steps": s, "prefilled": p, "decoded": d,
             "seconds": truth[0] * s + truth[1] * p + truth[2] * d}
            for s, p, d in [(1, 10000, 16), (64, 900, 500), (32, 3000, 1800), (8, 50, 8)]]
    cost = fit(rows, image_tokens=64)
    assert (cost.step_s, cost.prefill_s, cost.decode_s) == pytest.approx(truth)
    assert cost.image_tokens == 64


def test_calibration_compares_the_fit_with_the_reference_model():
    reference = CostModel.load(REFERENCE_COST)
    assert reference.step_s > 0 and reference.prefill_s > 0 and reference.decode_s > 0
    rows = [{"steps": 1, "prefilled": 10000, "decoded": 16},
            {"steps": 64, "prefilled": 900, "decoded": 500}]
    assert vs_reference(reference.scaled(1.5), rows, reference) == pytest.approx(1.5)
    # A host whose step overhead alone doubles is slower on decode-heavy work.
    slow_steps = CostModel(**{**asdict(reference), "step_s": 2 * reference.step_s})
    assert vs_reference(slow_steps, rows[1:], reference) > vs_reference(slow_steps, rows[:1],
                                                                         reference) > 1
