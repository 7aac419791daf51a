"""What goes into an engine and what comes back: plain, picklable values.

Stages talk to every engine (local vLLM, vLLM in a Ray actor, a scripted test engine)
through these types only, so a stage never knows which one it is using.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image


@dataclass(frozen=True)
class ChatRequest:
    """One chat turn: an optional image (placed first in the user message) and a prompt.

    With `assistant` set, the request is scored instead of answered: the text becomes the
    final assistant message and the engine returns the log-probability of each of its
    tokens (one prefill, no generation).
    """

    prompt: str
    image: bytes | Image.Image | None = None
    # A stable key for the image (e.g. a content hash): engines use it to cache the
    # image's processing and its prefix across requests.
    image_key: str | None = None
    system: str | None = None
    assistant: str | None = None
    # Where the image came from, when that is an http(s) URL: API engines may send it
    # instead of the bytes (`send_image_urls`); vLLM engines always use the bytes.
    image_url: str | None = None


@dataclass(frozen=True)
class Sampling:
    """Decoding settings for one engine call."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    # Only used when sampling (temperature > 0); greedy decoding needs none.
    seed: int | None = 0
    # Strings whose first-token log-probabilities to return (each must be one token in
    # the model's vocabulary; others are left out of the answer).
    first_token_logprobs: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenLogprob:
    """A token of a scored assistant message: its character span in that message."""

    start: int
    end: int
    logprob: float


@dataclass
class ChatResult:
    """The engine's answer to one request.  `error` is set when this request failed on
    its own (bad input, prompt too long); the other fields are then empty."""

    text: str = ""
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    first_token_logprobs: dict[str, float] = field(default_factory=dict)
    assistant_logprobs: list[TokenLogprob] | None = None
    error: str | None = None


class ChatEngine(Protocol):
    """What stages need from an engine: a batch of requests in, one result per request
    out, in order.  Failures of single requests come back as results with `error`;
    failures of the engine itself raise."""

    def chat(self, requests: Sequence[ChatRequest], sampling: Sampling) -> list[ChatResult]: ...


def chat_messages(req: ChatRequest, image_part: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The chat messages of a request: system, then the user turn with the image part
    (each engine's own form of it) before the prompt, then the assistant text to score."""
    content: list[dict[str, Any]] = []
    if req.image is not None and image_part is not None:
        content.append(image_part)
    content.append({"type": "text", "text": req.prompt})
    messages: list[dict[str, Any]] = []
    if req.system is not None:
        messages.append({"role": "system", "content": req.system})
    messages.append({"role": "user", "content": content})
    if req.assistant is not None:
        messages.append({"role": "assistant", "content": req.assistant})
    return messages
