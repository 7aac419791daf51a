"""The API backend against a real server: vLLM's OpenAI-compatible server on the smoke
model, directly or through a proxy that injects faults or plays a more limited API."""

import asyncio
import math

import pytest

from scalecap_ray.engine.config import EngineConfig
from scalecap_ray.engine.openai_engine import OpenAIEngine, align_suffix, api_key
from scalecap_ray.engine.ratelimit import RateLimiter
from scalecap_ray.engine.types import ChatRequest, Sampling
from tests.apiservers import SERVED_NAME, Fault, FaultProxy
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.engine

IMAGE = (EXAMPLES / "images" / "boat.png").read_bytes()
YES_NO = ("Yes", "No", "yes", "no")
SCORED = ChatRequest("Describe the image.", image=IMAGE,
                     assistant="A book stands behind the road. The cat sleeps.")


def engine(url: str, limiter=None, **fields) -> OpenAIEngine:
    return OpenAIEngine(EngineConfig(model=SERVED_NAME, backend="openai", api_url=url,
                                     **fields), limiter)


def chat(eng: OpenAIEngine, requests, sampling: Sampling | None = None):
    """One batch on a fresh engine's event loop (an engine stays on one loop)."""
    return asyncio.run(eng.chat(requests, sampling or Sampling(max_tokens=16)))


def test_answers_yes_no_and_usage(vllm_server):
    async def scenario():
        eng = engine(vllm_server.url)
        caps = await eng.capabilities()
        texts = await eng.chat([ChatRequest("Describe the image.", image=IMAGE),
                                ChatRequest("Is there a boat?", image=IMAGE)],
                               Sampling(max_tokens=16))
        yes_no = await eng.chat([ChatRequest("Is there a boat?", image=IMAGE)],
                                Sampling(max_tokens=1, first_token_logprobs=YES_NO))
        return caps, texts, yes_no

    caps, (text, other), (answer,) = asyncio.run(scenario())
    assert caps == {"prompt_logprobs": True, "logprobs": True}
    assert text.error is None and text.text and text.output_tokens > 0
    assert other.error is None and other.text
    assert text.prompt_tokens > 50  # the image's tokens count
    assert set(answer.first_token_logprobs) == set(YES_NO)
    assert all(lp <= 0 for lp in answer.first_token_logprobs.values())


def test_scores_match_the_engine_in_process(vllm_server, local_engine):
    """Token spans of a scored message are those the in-process engine finds with the
    tokenizer's offsets, and the log-probabilities agree."""
    (api,) = chat(engine(vllm_server.url), [SCORED])
    (local,) = local_engine.chat([SCORED], Sampling(max_tokens=1))
    assert [(t.start, t.end) for t in api.assistant_logprobs] == \
        [(t.start, t.end) for t in local.assistant_logprobs]
    for a, b in zip(api.assistant_logprobs, local.assistant_logprobs, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=0.05)


def test_retries_429_500_and_timeouts(vllm_server):
    proxy = FaultProxy(vllm_server.url, [Fault("FLAKY-429", status=429, times=2),
                                         Fault("FLAKY-500", status=500, times=2),
                                         Fault("SLOW", delay_s=3.0, times=1)])
    try:
        eng = engine(proxy.url, request_timeout_s=1.5, max_retries=3)
        results = chat(eng, [ChatRequest("FLAKY-429"), ChatRequest("FLAKY-500"),
                             ChatRequest("SLOW")])
        assert [r.error for r in results] == [None, None, None]
        assert all(r.text for r in results)
        assert [f.hits for f in proxy.faults] == [2, 2, 1]
        # Five failed attempts, then one good one per request.
        assert len(proxy.log.times) == 5 + 3
    finally:
        proxy.stop()


def test_a_request_that_keeps_failing_becomes_its_error(vllm_server):
    proxy = FaultProxy(vllm_server.url, [Fault("BROKEN", status=500)])
    try:
        eng = engine(proxy.url, max_retries=2)
        ok, bad = chat(eng, [ChatRequest("Fine."), ChatRequest("BROKEN")])
        assert ok.error is None and ok.text
        assert "InternalServerError" in bad.error and "injected 500" in bad.error
        assert proxy.faults[0].hits == 3  # the first try and two retries
    finally:
        proxy.stop()


def _no_prompt_logprobs(body: dict) -> dict | None:
    return None if "prompt_logprobs" in body else body


def _drop_logprobs(answer: dict) -> dict:
    for choice in answer.get("choices", []):
        choice["logprobs"] = None
    return answer


def test_an_api_without_log_probabilities(vllm_server):
    """OpenAI's own API has no prompt log-probabilities; some endpoints have no
    log-probabilities at all: scoring fails its rows clearly, yes/no reads the text."""
    proxy = FaultProxy(vllm_server.url, rewrite_request=_no_prompt_logprobs,
                       rewrite_response=_drop_logprobs)
    try:
        async def scenario():
            eng = engine(proxy.url)
            caps = await eng.capabilities()
            scored = await eng.chat([SCORED], Sampling(max_tokens=1))
            answer = await eng.chat([ChatRequest("Is there a boat?", image=IMAGE)],
                                    Sampling(max_tokens=4, first_token_logprobs=YES_NO))
            return caps, scored[0], answer[0]

        caps, scored, answer = asyncio.run(scenario())
        assert caps == {"prompt_logprobs": False, "logprobs": False}
        assert "returns no prompt log-probabilities" in scored.error
        first = answer.text.strip().split()[0].strip(".,").lower()
        assert {k for k, v in answer.first_token_logprobs.items() if v == 0.0} == \
            {k for k in YES_NO if k.lower() == first}
        assert all(v in (0.0, -math.inf) for v in answer.first_token_logprobs.values())
    finally:
        proxy.stop()


def test_request_rate_limit_holds(vllm_server):
    proxy = FaultProxy(vllm_server.url)
    try:
        eng = engine(proxy.url, limiter=RateLimiter(requests_per_second=4,
                                                    tokens_per_minute=None))
        results = chat(eng, [ChatRequest(f"Count {i}.") for i in range(9)],
                       Sampling(max_tokens=2))
        assert all(r.error is None for r in results)
        times = sorted(proxy.log.times)
        # Nine requests at 4/s: the last starts at least 2 s after the first.
        assert times[-1] - times[0] >= 2.0 - 0.05
    finally:
        proxy.stop()


def test_rate_limiter_schedules_requests_and_tokens():
    now = [0.0]
    lim = RateLimiter(requests_per_second=2, tokens_per_minute=600, clock=lambda: now[0])
    assert [lim.reserve(10) for _ in range(3)] == [0.0, 0.5, 1.0]
    # 600 tokens/min = 10/s; a full minute's worth is there at first, then it is owed.
    lim2 = RateLimiter(None, 600, clock=lambda: now[0])
    assert lim2.reserve(600) == 0.0
    assert lim2.reserve(50) == pytest.approx(5.0)
    lim2.settle(-50)  # the request used 50 tokens fewer than reserved
    now[0] = 1.0
    assert lim2.reserve(10) == pytest.approx(0.0)


def test_alignment_and_keys(monkeypatch):
    spans = align_suffix(["<im>", "user", "A", " cup", "."], [-9, -9, -1, -2, -3], "A cup.")
    assert [(s.start, s.end, s.logprob) for s in spans] == [(0, 1, -1), (1, 5, -2), (5, 6, -3)]
    with pytest.raises(ValueError, match="do not end with"):
        align_suffix(["A", " mug", "."], [0, 0, 0], "A cup.")
    cfg = EngineConfig(backend="openai", api_url="http://x/v1")
    monkeypatch.delenv("SCALECAP_API_KEY", raising=False)
    monkeypatch.setenv("DF_API_KEY", "df-key")
    assert api_key(cfg) == "df-key"
    monkeypatch.setenv("SCALECAP_API_KEY", "sc-key")
    assert api_key(cfg) == "sc-key"
    with pytest.raises(ValueError, match="api_url is required"):
        EngineConfig(backend="openai")


def test_images_go_as_data_urls_or_their_source_url():
    from scalecap_ray.engine.openai_engine import messages

    req = ChatRequest("What is it?", image=IMAGE, image_url="https://example.org/boat.png",
                      system="sys", assistant="A boat.")
    system, user, assistant = messages(req)
    assert system == {"role": "system", "content": "sys"}
    assert user["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert user["content"][1] == {"type": "text", "text": "What is it?"}
    assert assistant == {"role": "assistant", "content": "A boat."}
    assert messages(req, send_image_urls=True)[1]["content"][0]["image_url"]["url"] == \
        "https://example.org/boat.png"
    local = ChatRequest("What is it?", image=IMAGE)  # no source URL: the bytes go
    assert messages(local, send_image_urls=True)[0]["content"][0]["image_url"]["url"] \
        .startswith("data:image/png")
