"""Stage B: keep the caption's sentences the image supports ("golden sentences").

`contrastive` (the paper's): one prefill of the caption with the image and one without;
a sentence's score is its largest probability gain from the image over content tokens.
`yes_no` (DataFlow-MM's): one grounding question per sentence, scored from the first
answer token.  If nothing passes, the whole caption is kept (official behaviour), unless
configured otherwise.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import pyarrow as pa

from scalecap_ray.engine.pool import EngineSpec, connect
from scalecap_ray.engine.types import ChatEngine, ChatRequest, Sampling
from scalecap_ray.prompts import fill
from scalecap_ray.stages.batch import IMAGE_READS, Rows, call_engine, image_args
from scalecap_ray.text.scoring import YES_NO_TOKENS, contrastive_scores, keep, yes_probability
from scalecap_ray.text.sentences import Sentence, split_sentences

SCORE_SAMPLING = Sampling(max_tokens=1)
YES_NO_SAMPLING = Sampling(max_tokens=1, first_token_logprobs=YES_NO_TOKENS)


class VerifyStage:
    """Reads the initial caption and the image; writes `sentences`, `sentence_scores`
    (one per sentence; null when a sentence has no content word) and `golden_sentences`."""

    name = "verify"
    reads = ("init_caption", *IMAGE_READS)
    writes: ClassVar[dict[str, pa.DataType]] = {
        "sentences": pa.list_(pa.string()),
        "sentence_scores": pa.list_(pa.float64()),
        "golden_sentences": pa.list_(pa.string()),
    }

    def __init__(self, engine: EngineSpec | ChatEngine, *,
                 mode: Literal["contrastive", "yes_no"], caption_prompt: str,
                 grounding_prompt: str, tau: float, yes_threshold: float,
                 keep_all_if_none: bool = True, system: str | None = None):
        self.engine = connect(engine)
        self.mode, self.caption_prompt = mode, caption_prompt
        self.grounding_prompt = grounding_prompt
        self.threshold = tau if mode == "contrastive" else yes_threshold
        self.keep_all_if_none, self.system = keep_all_if_none, system

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = Rows(batch, self.reads)
        split = {i: split_sentences(rows.cols["init_caption"][i]) for i in rows.active()}
        scores = (self._contrastive(rows, split) if self.mode == "contrastive"
                  else self._yes_no(rows, split))
        for i, row_scores in scores.items():
            sentences = split[i]
            golden = [s.text for s, sc in zip(sentences, row_scores, strict=True)
                      if keep(sc, self.threshold)]
            if not golden and self.keep_all_if_none:
                golden = [rows.cols["init_caption"][i]]
            rows.output("sentences")[i] = [s.text for s in sentences]
            rows.output("sentence_scores")[i] = row_scores
            rows.output("golden_sentences")[i] = golden
        return rows.to_table(self.writes)

    def _contrastive(self, rows: Rows, split: dict[int, list[Sentence]]
                     ) -> dict[int, list[float | None]]:
        requests = {}
        for i in split:
            caption = rows.cols["init_caption"][i]
            requests[i] = [
                ChatRequest(self.caption_prompt, system=self.system, assistant=caption,
                            **image_args(rows, i)),
                ChatRequest(self.caption_prompt, system=self.system, assistant=caption),
            ]
        out = {}
        for i, (with_image, without) in call_engine(self.engine, rows, self.name, requests,
                                                    SCORE_SAMPLING).items():
            try:
                out[i] = contrastive_scores(rows.cols["init_caption"][i], split[i],
                                            with_image.assistant_logprobs,
                                            without.assistant_logprobs)
            except ValueError as exc:  # the two passes disagree on tokens
                rows.fail(i, self.name, f"{self.name}: {exc}")
        return out

    def _yes_no(self, rows: Rows, split: dict[int, list[Sentence]]
                ) -> dict[int, list[float | None]]:
        requests = {i: [ChatRequest(fill(self.grounding_prompt, s.text), system=self.system,
                                    **image_args(rows, i)) for s in sentences]
                    for i, sentences in split.items()}
        results = call_engine(self.engine, rows, self.name, requests, YES_NO_SAMPLING)
        return {i: [yes_probability(r.first_token_logprobs) for r in res]
                for i, res in results.items()}
