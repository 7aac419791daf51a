"""Stage C (and C'): the LLM turns each golden sentence into "Describe more details
about ..." instructions (prompt P2, once per sentence, as in the paper); position
instructions are derived from them without a model."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from scalecap_ray.engine.pool import EngineSpec, connect
from scalecap_ray.engine.types import ChatEngine, ChatRequest, Sampling
from scalecap_ray.prompts import fill
from scalecap_ray.stages.batch import Rows, call_engine
from scalecap_ray.text.instructions import (
    merge_instructions,
    parse_instructions,
    position_question,
)


class QuestionsStage:
    """Reads `golden_sentences`; writes `object_questions`, `position_questions`,
    `object_question_sources` (the golden sentence each object question came from) and
    `no_questions` (true when the replies held no instruction: the lists are empty)."""

    name = "questions"
    reads = ("golden_sentences",)
    writes: ClassVar[dict[str, pa.DataType]] = {
        "object_questions": pa.list_(pa.string()),
        "position_questions": pa.list_(pa.string()),
        "object_question_sources": pa.list_(pa.int32()),
        "no_questions": pa.bool_(),
    }

    def __init__(self, engine: EngineSpec | ChatEngine, *, prompt: str, max_questions: int,
                 sampling: Sampling, system: str | None = None):
        self.engine = connect(engine)
        self.prompt, self.max_questions = prompt, max_questions
        self.sampling, self.system = sampling, system

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = Rows(batch, self.reads)
        requests = {i: [ChatRequest(fill(self.prompt, s), system=self.system)
                        for s in rows.cols["golden_sentences"][i]]
                    for i in rows.active()}
        for i, replies in call_engine(self.engine, rows, self.name, requests,
                                      self.sampling).items():
            questions, sources = merge_instructions(
                [parse_instructions(r.text) for r in replies], self.max_questions)
            rows.output("no_questions")[i] = not questions
            rows.output("object_questions")[i] = questions
            rows.output("position_questions")[i] = [position_question(q) for q in questions]
            rows.output("object_question_sources")[i] = sources
        return rows.to_table(self.writes)
