"""The engine for an OpenAI-compatible API (`backend: openai`): `vllm serve`, OpenAI,
DashScope and the like, behind the same `chat` as the vLLM engine.

Requests of a batch go out concurrently on one event loop (at most
`max_concurrent_requests` at once), under the model's shared rate limits.  The openai
client retries rate limits, server errors, timeouts and broken connections with
exponential backoff and jitter; what still fails becomes that request's error.

Scoring needs log-probabilities.  Contrastive scoring of a whole assistant message needs
prompt log-probabilities, which vLLM's server returns (`prompt_logprobs`) and OpenAI's
does not; yes/no questions need the first output token's top log-probabilities, and fall
back to the answer's text where the endpoint gives none.  `capabilities()` probes both
once at start-up.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import os
from collections.abc import Sequence
from typing import Any

from PIL import Image

from scalecap_ray.engine import ratelimit
from scalecap_ray.engine.config import EngineConfig
from scalecap_ray.engine.types import (
    ChatRequest,
    ChatResult,
    Sampling,
    TokenLogprob,
    chat_messages,
)

FALLBACK_KEY_ENV = "DF_API_KEY"  # DataFlow-MM's variable
TOP_LOGPROBS = 20
# A rough token estimate for rate limiting before the API counts: ~4 characters a token,
# and what Qwen2.5-VL spends on an image at the default pixel budget.
CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 1280
# vLLM's chat parameters that make the final assistant message a prefix to score.
_SCORE_BODY = {"prompt_logprobs": 0, "add_generation_prompt": False,
               "continue_final_message": True}


def _import_openai():
    try:
        import openai
    except ImportError as exc:
        raise ImportError("the openai backend needs the `openai` package: pip install "
                          "openai (it comes with scalecap-ray's dependencies)") from exc
    return openai


def api_key(cfg: EngineConfig) -> str:
    """The key from `cfg.api_key_env`, else DF_API_KEY, else a placeholder (local servers
    need none, and the client insists on some value)."""
    return os.environ.get(cfg.api_key_env) or os.environ.get(FALLBACK_KEY_ENV) or "EMPTY"


def image_url(image: bytes | Image.Image) -> str:
    """A data URL of the image (JPEG and PNG as they are, anything else as JPEG)."""
    if isinstance(image, Image.Image):
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=95)
        image = buf.getvalue()
    mime = "image/png" if image.startswith(b"\x89PNG") else "image/jpeg"
    if not image.startswith((b"\x89PNG", b"\xff\xd8")):
        return image_url(Image.open(io.BytesIO(image)))
    return f"data:{mime};base64,{base64.b64encode(image).decode()}"


def messages(req: ChatRequest, send_image_urls: bool = False) -> list[dict[str, Any]]:
    part = None
    if req.image is not None:
        url = req.image_url if send_image_urls and req.image_url else image_url(req.image)
        part = {"type": "image_url", "image_url": {"url": url}}
    return chat_messages(req, part)


def align_suffix(decoded: list[str], logprobs: list[float], text: str) -> list[TokenLogprob]:
    """Token spans of `text`, which ends the prompt, from the prompt's decoded tokens."""
    spans: list[TokenLogprob] = []
    end = len(text)
    for token, lp in zip(reversed(decoded), reversed(logprobs), strict=True):
        if end <= 0:
            break
        start = end - len(token)
        if text[max(start, 0):end] != token[max(-start, 0):]:
            raise ValueError("the API's prompt tokens do not end with the assistant message")
        spans.append(TokenLogprob(max(start, 0), end, lp))
        end = start
    return spans[::-1]


class OpenAIEngine:
    """`chat` over an OpenAI-compatible endpoint; `limiter` is a shared `RateLimiter`
    (or its actor's handle), or None for no limits."""

    def __init__(self, cfg: EngineConfig, limiter=None):
        openai = _import_openai()
        self.cfg, self.limiter = cfg, limiter
        self.model = cfg.model_name or cfg.model
        self.client = openai.AsyncOpenAI(base_url=cfg.api_url, api_key=api_key(cfg),
                                         timeout=cfg.request_timeout_s,
                                         max_retries=cfg.max_retries)
        self.max_model_len = cfg.max_model_len
        self.engine_args = {"backend": "openai", "api_url": cfg.api_url, "model": self.model}
        self._slots: asyncio.Semaphore | None = None
        self._caps: dict[str, bool] | None = None
        self._caps_lock: asyncio.Lock | None = None

    # -- start-up --------------------------------------------------------------------

    async def capabilities(self) -> dict[str, bool]:
        """What the endpoint supports, probed once: `prompt_logprobs` (contrastive
        scoring) and `logprobs` (yes/no from token probabilities).  An endpoint that
        cannot be reached, or refuses the key, raises."""
        if self._caps_lock is None:  # made on the loop that uses it
            self._caps_lock = asyncio.Lock()
        async with self._caps_lock:  # concurrent first calls probe once
            if self._caps is None:
                self._caps = await self._probe()
        return self._caps

    async def _probe(self) -> dict[str, bool]:
        openai = _import_openai()
        try:
            scored = await self._create(ChatRequest("Say yes.", assistant="Yes"), 1,
                                        extra_body=_SCORE_BODY)
            prompt_lp = bool((scored.model_extra or {}).get("prompt_logprobs"))
        except openai.BadRequestError:
            prompt_lp = False
        answer = await self._create(ChatRequest("Say yes."), 1, logprobs=True, top_logprobs=5)
        return {"prompt_logprobs": prompt_lp, "logprobs": answer.choices[0].logprobs is not None}

    # -- calls -----------------------------------------------------------------------

    async def _create(self, req: ChatRequest, max_tokens: int, **kwargs):
        if self._slots is None:  # made on the loop that uses it
            self._slots = asyncio.Semaphore(self.cfg.max_concurrent_requests)
        estimate = len(req.prompt + (req.system or "") + (req.assistant or "")) \
            / CHARS_PER_TOKEN + (IMAGE_TOKENS if req.image is not None else 0) + max_tokens
        await ratelimit.acquire(self.limiter, estimate)
        async with self._slots:
            resp = await self.client.chat.completions.create(
                model=self.model, messages=messages(req, self.cfg.send_image_urls),
                max_tokens=max_tokens, **kwargs)
        if resp.usage is not None:
            ratelimit.settle(self.limiter, resp.usage.total_tokens - estimate)
        return resp

    async def chat(self, requests: Sequence[ChatRequest], sampling: Sampling
                   ) -> list[ChatResult]:
        return list(await asyncio.gather(*(self._one(r, sampling) for r in requests)))

    async def _one(self, req: ChatRequest, sampling: Sampling) -> ChatResult:
        openai = _import_openai()
        try:
            if req.assistant is not None:
                return await self._score(req)
            kwargs: dict[str, Any] = {"temperature": sampling.temperature,
                                      "top_p": sampling.top_p}
            if sampling.temperature > 0 and sampling.seed is not None:
                kwargs["seed"] = sampling.seed
            wanted = sampling.first_token_logprobs
            if wanted and (await self.capabilities())["logprobs"]:
                kwargs |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
            resp = await self._create(req, sampling.max_tokens, **kwargs)
            return self._result(resp, wanted)
        except (openai.APIError, ValueError) as exc:
            return ChatResult(error=f"{type(exc).__name__}: {exc}")

    async def _score(self, req: ChatRequest) -> ChatResult:
        if not (await self.capabilities())["prompt_logprobs"]:
            raise ValueError(f"{self.cfg.api_url} returns no prompt log-probabilities: "
                             "contrastive scoring needs a vLLM server (or verify_mode yes_no)")
        resp = await self._create(req, 1, temperature=0.0, extra_body=_SCORE_BODY)
        entries = [e for e in (resp.model_extra or {}).get("prompt_logprobs") or [] if e]
        decoded, lps = [], []
        for entry in entries:  # per prompt token: {token id: {logprob, rank, decoded_token}}
            info = next(iter(entry.values()))
            decoded.append(info.get("decoded_token") or "")
            lps.append(info["logprob"])
        usage = resp.usage
        return ChatResult(prompt_tokens=usage.prompt_tokens if usage else 0,
                          cached_tokens=_cached(usage),
                          assistant_logprobs=align_suffix(decoded, lps, req.assistant))

    @staticmethod
    def _result(resp, wanted: tuple[str, ...]) -> ChatResult:
        choice = resp.choices[0]
        text = choice.message.content or ""
        usage = resp.usage
        result = ChatResult(text=text, finish_reason=choice.finish_reason,
                            prompt_tokens=usage.prompt_tokens if usage else 0,
                            cached_tokens=_cached(usage),
                            output_tokens=usage.completion_tokens if usage else 0)
        if wanted:
            result.first_token_logprobs = _first_token(choice, text, wanted)
        return result

    def shutdown(self) -> None:
        """Nothing to stop: the HTTP connections close with the process."""


def _cached(usage) -> int:
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return (getattr(details, "cached_tokens", None) or 0) if details else 0


def _first_token(choice, text: str, wanted: tuple[str, ...]) -> dict[str, float]:
    """Log-probabilities of the wanted strings as the first output token: from the top
    log-probabilities when the endpoint gives them, else from the answer's first word
    (certain for what it says, impossible for the rest)."""
    content = choice.logprobs.content if choice.logprobs is not None else None
    if content:
        top = {t.token: t.logprob for t in content[0].top_logprobs or []}
        top.setdefault(content[0].token, content[0].logprob)
        return {w: top[w] for w in wanted if w in top}
    first = text.strip().split(maxsplit=1)[0].strip(".,!:;").lower() if text.strip() else ""
    return {w: (0.0 if w.strip().lower() == first else -math.inf) for w in wanted}
