"""Stage D' (the "second filter", off by default): check every answer against the image
with the verify stage's machinery, and keep only the grounded ones.

`contrastive`: the answer is scored as one unit, its largest probability gain from the
image over content tokens (question as the prompt, with and without the image); kept when
above `tau`.  `yes_no`: DataFlow-MM's answer grounding question; kept when P(yes) share is
above `yes_threshold`.  Empty answers are never kept and cost no request.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa

from scalecap_ray.engine.pool import EngineSpec, connect
from scalecap_ray.engine.types import ChatEngine, ChatRequest
from scalecap_ray.prompts import fill
from scalecap_ray.stages.answer import ANSWER_COLUMNS
from scalecap_ray.stages.batch import IMAGE_READS, Rows, call_engine, image_args
from scalecap_ray.stages.verify import SCORE_SAMPLING, YES_NO_SAMPLING
from scalecap_ray.text.scoring import contrastive_scores, keep, yes_probability
from scalecap_ray.text.sentences import Sentence


class FilterStage:
    """Reads questions, answers and the image; writes `answer_scores`, `answer_kept` and
    `qa_answers_filtered`."""

    name = "filter"
    reads = ("object_questions", "position_questions", "answers", *IMAGE_READS)
    writes = ANSWER_COLUMNS

    def __init__(self, engine: EngineSpec | ChatEngine, *,
                 mode: Literal["contrastive", "yes_no"], grounding_prompt: str, tau: float,
                 yes_threshold: float, system: str | None = None):
        self.engine = connect(engine)
        self.mode, self.grounding_prompt, self.system = mode, grounding_prompt, system
        self.threshold = tau if mode == "contrastive" else yes_threshold

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = Rows(batch, self.reads)
        pairs = {i: [(q, a) for q, a in zip(
            rows.cols["object_questions"][i] + rows.cols["position_questions"][i],
            rows.cols["answers"][i], strict=True)] for i in rows.active()}
        scored = self._contrastive(rows, pairs) if self.mode == "contrastive" else \
            self._yes_no(rows, pairs)
        for i, scores in scored.items():
            kept = [keep(s, self.threshold) for s in scores]
            rows.output("answer_scores")[i] = scores
            rows.output("answer_kept")[i] = kept
            rows.output("qa_answers_filtered")[i] = [
                a for (_, a), k in zip(pairs[i], kept, strict=True) if k]
        return rows.to_table(self.writes)

    def _requests(self, rows, pairs, make) -> tuple[dict, dict]:
        """Requests for the non-empty answers, and where each answer's result lands."""
        requests, where = {}, {}
        for i, qa in pairs.items():
            requests[i], where[i] = [], []
            for j, (q, a) in enumerate(qa):
                if a:
                    where[i].append((j, len(requests[i])))
                    requests[i] += make(rows, i, q, a)
        return requests, where

    def _contrastive(self, rows, pairs) -> dict[int, list[float | None]]:
        def make(rows, i, q, a):
            return [ChatRequest(q, system=self.system, assistant=a, **image_args(rows, i)),
                    ChatRequest(q, system=self.system, assistant=a)]

        requests, where = self._requests(rows, pairs, make)
        out = {}
        for i, res in call_engine(self.engine, rows, self.name, requests, SCORE_SAMPLING).items():
            scores: list[float | None] = [None] * len(pairs[i])
            try:
                for j, k in where[i]:
                    answer = pairs[i][j][1]
                    (scores[j],) = contrastive_scores(
                        answer, [Sentence(answer, 0, len(answer))],
                        res[k].assistant_logprobs, res[k + 1].assistant_logprobs)
            except ValueError as exc:  # the two passes disagree on tokens
                rows.fail(i, self.name, f"{self.name}: {exc}")
                continue
            out[i] = scores
        return out

    def _yes_no(self, rows, pairs) -> dict[int, list[float | None]]:
        def make(rows, i, q, a):
            return [ChatRequest(fill(self.grounding_prompt, a), system=self.system,
                                **image_args(rows, i))]

        requests, where = self._requests(rows, pairs, make)
        out = {}
        for i, res in call_engine(self.engine, rows, self.name, requests, YES_NO_SAMPLING).items():
            scores: list[float | None] = [None] * len(pairs[i])
            for j, k in where[i]:
                scores[j] = yes_probability(res[k].first_token_logprobs)
            out[i] = scores
        return out
