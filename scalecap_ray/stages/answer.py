"""Stage D: the VLM answers every instruction about its image (image first, so all of an
image's requests share its cached prefix)."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from scalecap_ray.engine.pool import EngineSpec, connect
from scalecap_ray.engine.types import ChatEngine, ChatRequest, Sampling
from scalecap_ray.stages.batch import IMAGE_READS, Rows, call_engine, image_args

ANSWER_COLUMNS = {
    "answer_scores": pa.list_(pa.float64()),
    "answer_kept": pa.list_(pa.bool_()),
    "qa_answers_filtered": pa.list_(pa.string()),
}


class AnswerStage:
    """Reads the questions and the image; writes `answers` (object questions first, then
    position questions, one answer each) and, as if no second filter ran, `answer_kept`
    (every non-empty answer), `qa_answers_filtered` and null `answer_scores`."""

    name = "answer"
    reads = ("object_questions", "position_questions", *IMAGE_READS)
    writes: ClassVar[dict[str, pa.DataType]] = {"answers": pa.list_(pa.string()), **ANSWER_COLUMNS}

    def __init__(self, engine: EngineSpec | ChatEngine, *, sampling: Sampling,
                 system: str | None = None):
        self.engine = connect(engine)
        self.sampling, self.system = sampling, system

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = Rows(batch, self.reads)
        requests = {
            i: [ChatRequest(q, system=self.system, **image_args(rows, i))
                for q in rows.cols["object_questions"][i] + rows.cols["position_questions"][i]]
            for i in rows.active()
        }
        for i, results in call_engine(self.engine, rows, self.name, requests,
                                      self.sampling).items():
            answers = [r.text.strip() for r in results]
            rows.output("answers")[i] = answers
            rows.output("answer_kept")[i] = [bool(a) for a in answers]
            rows.output("qa_answers_filtered")[i] = [a for a in answers if a]
        return rows.to_table(self.writes)
