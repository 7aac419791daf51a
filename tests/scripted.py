"""A scripted engine for stage tests: the `ChatEngine` interface, deterministic, answering
from what it is given.  Every call is recorded for assertions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from scalecap_ray.engine.types import ChatRequest, ChatResult, Sampling

Reply = Callable[[ChatRequest, Sampling], ChatResult | str]


class ScriptedEngine:
    def __init__(self, reply: Reply):
        self.reply = reply
        self.calls: list[tuple[list[ChatRequest], Sampling]] = []

    def chat(self, requests: Sequence[ChatRequest], sampling: Sampling) -> list[ChatResult]:
        self.calls.append((list(requests), sampling))
        out = []
        for req in requests:
            res = self.reply(req, sampling)
            if isinstance(res, str):
                res = ChatResult(text=res, prompt_tokens=len(req.prompt.split()) + 10,
                                 cached_tokens=4, output_tokens=len(res.split()))
            out.append(res)
        return out

    @property
    def requests(self) -> list[ChatRequest]:
        return [r for reqs, _ in self.calls for r in reqs]
