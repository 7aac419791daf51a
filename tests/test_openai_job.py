"""The ScaleCap job on the API backend: `scalecap-ray run --backend openai` against vLLM's
OpenAI-compatible server on the smoke model, directly and through a fault-injecting
proxy; checked against the same output contract as the vLLM backend."""

import pyarrow.parquet as pq
import pytest

from scalecap_ray import prompts
from tests.apiservers import SERVED_NAME, Fault, FaultProxy
from tests.test_cli import run_cli
from tests.test_scalecap_job import CONTRACT, N_EXAMPLES, job_input

pytestmark = pytest.mark.engine

# A line only the final integration prompt (P5) contains.
INTEGRATE_MARK = prompts.INTEGRATE_PROMPT.split("\n", 1)[0]


def run_api_job(tmp_path, url: str, *settings: str, expect_rc: int = 0):
    out = tmp_path / "out"
    args = ["run", "--backend", "openai", "--input", job_input(tmp_path), "--output", str(out)]
    for role in ("vlm", "llm"):
        args += ["--set", f"{role}.api_url={url}", "--set", f"{role}.model_name={SERVED_NAME}"]
    for s in settings:
        args += ["--set", s]
    proc = run_cli(*args)
    assert proc.returncode == expect_rc, proc.stderr[-4000:]
    if expect_rc:
        return proc
    table = pq.read_table(out)
    for name, typ in CONTRACT.items():
        assert table.schema.field(name).type == typ, name
    rows = table.to_pylist()
    assert len(rows) == N_EXAMPLES + 1  # rows in == rows out
    return rows


@pytest.mark.parametrize("mode", ["contrastive", "yes_no"])
def test_scalecap_job_on_the_api(vllm_server, tmp_path, mode):
    rows = run_api_job(tmp_path, vllm_server.url, f"verify_mode={mode}")
    good = [r for r in rows if r["error"] is None]
    assert len(good) == N_EXAMPLES
    for r in good:
        assert r["final_caption"] and r["golden_sentences"] and r["object_questions"]
        assert len(r["sentence_scores"]) == len(r["sentences"])
        assert r["prompt_tokens"] > 0 and r["output_tokens"] > 0
        assert r["requests"] >= 4
    (bad,) = [r for r in rows if r["error"] is not None]
    assert bad["error_stage"] == "load"


def test_failing_requests_become_row_errors_under_a_shared_rate_limit(vllm_server, tmp_path):
    proxy = FaultProxy(vllm_server.url, [Fault(INTEGRATE_MARK, status=500),
                                         Fault("Describe", status=429, times=3)])
    try:
        rows = run_api_job(tmp_path, proxy.url, "verify_mode=yes_no", "integrate_mode=single",
                           "vlm.max_retries=3", "vlm.requests_per_second=8",
                           "llm.max_retries=3", "llm.requests_per_second=8")
    finally:
        proxy.stop()
    integrate = [r for r in rows if r["error_stage"] == "integrate"]
    assert len(integrate) == N_EXAMPLES  # every good image failed at the last stage only
    for r in integrate:
        assert "injected 500" in r["error"] and r["answers"] and r["final_caption"] is None
    assert proxy.faults[0].hits == N_EXAMPLES * 4  # each tried once and retried three times
    assert proxy.faults[1].hits == 3  # 429s retried away
    times = sorted(proxy.log.times)
    # All replicas share one limiter: never faster than 8 requests a second overall.
    assert (len(times) - 1) / (times[-1] - times[0]) <= 8 * 1.02


def _no_prompt_logprobs(body: dict) -> dict | None:
    return None if "prompt_logprobs" in body else body


def test_contrastive_needs_prompt_logprobs_or_falls_back(vllm_server, tmp_path):
    proxy = FaultProxy(vllm_server.url, rewrite_request=_no_prompt_logprobs)
    try:
        refused = run_api_job(tmp_path / "a", proxy.url, expect_rc=2)
        assert "verify_mode contrastive needs prompt log-probabilities" in refused.stderr
        assert "verify_fallback=true" in refused.stderr
        rows = run_api_job(tmp_path / "b", proxy.url, "verify_fallback=true")
    finally:
        proxy.stop()
    good = [r for r in rows if r["error"] is None]
    assert len(good) == N_EXAMPLES and all(r["final_caption"] for r in good)
