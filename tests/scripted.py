"""A scripted engine for stage tests: the `ChatEngine` interface, deterministic, answering
from what it is given.  Every call is recorded for assertions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from scalecap_ray.engine.types import ChatRequest, ChatResult, Sampling

if TYPE_CHECKING:
    import pyarrow as pa

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


def make_batch(rows: list[dict]) -> pa.Table:
    """A stage input batch: the given columns plus empty bookkeeping columns."""
    import pyarrow as pa

    from scalecap_ray.stages.batch import BOOKKEEPING

    full = [{"error": None, "error_stage": None, "stage_usage": [], "image_uri": None, **r}
            for r in rows]
    table = pa.Table.from_pylist(full)
    for name, typ in BOOKKEEPING.items():
        table = table.set_column(table.column_names.index(name), name,
                                 table.column(name).cast(typ))
    return table
