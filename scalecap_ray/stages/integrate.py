"""Stage E: the LLM writes the final caption from the golden sentences and the kept answers.

`paper` (default, the official code): an object summary (P3) over a block of
"Sentence: ..." lines each followed by "Details about {object}: {answer}" lines, a position
summary (P4) over the same block with "Position about {object}: ..." lines, then the final
caption (P5) from the golden sentences and both summaries.  `single` (DataFlow-MM's
pipeline): one P5 call with the kept answers as both object and position information.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import pyarrow as pa

from scalecap_ray.engine.pool import EngineSpec, connect
from scalecap_ray.engine.types import ChatEngine, ChatRequest, Sampling
from scalecap_ray.prompts import fill
from scalecap_ray.stages.batch import Rows, call_engine
from scalecap_ray.text.instructions import instruction_object


def detail_blocks(golden: list[str], questions: list[str], sources: list[int],
                  answers: list[str], kept: list[bool]) -> tuple[str, str]:
    """The object and position blocks of paper mode.  `answers`/`kept` hold the object
    answers first, then the position answers, as the answer stage writes them."""
    n = len(questions)
    objects, positions = [], []
    for idx, sentence in enumerate(golden):
        objects.append(f"Sentence: {sentence}")
        positions.append(f"Sentence: {sentence}")
        for j in range(n):
            if sources[j] != idx:
                continue
            obj = instruction_object(questions[j])
            if kept[j]:
                objects.append(f"Details about {obj}: {answers[j]}")
            if kept[n + j]:
                positions.append(f"Position about {obj}: {answers[n + j]}")
    return "\n".join(objects), "\n".join(positions)


class IntegrateStage:
    """Reads the golden sentences, questions and answers; writes `final_caption` (and, in
    paper mode, the intermediate `object_summary` and `position_summary`)."""

    name = "integrate"
    reads = ("golden_sentences", "object_questions", "object_question_sources", "answers",
             "answer_kept", "qa_answers_filtered")
    writes: ClassVar[dict[str, pa.DataType]] = {
        "object_summary": pa.string(),
        "position_summary": pa.string(),
        "final_caption": pa.string(),
    }

    def __init__(self, engine: EngineSpec | ChatEngine, *, mode: Literal["paper", "single"],
                 object_prompt: str, position_prompt: str, final_prompt: str,
                 sampling: Sampling, system: str | None = None):
        self.engine = connect(engine)
        self.mode, self.sampling, self.system = mode, sampling, system
        self.object_prompt, self.position_prompt = object_prompt, position_prompt
        self.final_prompt = final_prompt

    def _request(self, template: str, *values: str) -> ChatRequest:
        return ChatRequest(fill(template, *values), system=self.system)

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = Rows(batch, self.reads)
        c = rows.cols
        context = {i: "\n".join(c["golden_sentences"][i]) for i in rows.active()}
        if self.mode == "paper":
            requests = {}
            for i in context:
                objects, positions = detail_blocks(
                    c["golden_sentences"][i], c["object_questions"][i],
                    c["object_question_sources"][i], c["answers"][i], c["answer_kept"][i])
                requests[i] = [self._request(self.object_prompt, objects),
                               self._request(self.position_prompt, positions)]
            info = {}
            for i, (obj, pos) in call_engine(self.engine, rows, self.name, requests,
                                             self.sampling).items():
                info[i] = (obj.text.strip(), pos.text.strip())
                rows.output("object_summary")[i], rows.output("position_summary")[i] = info[i]
        else:
            info = {i: ("\n".join(c["qa_answers_filtered"][i]),) * 2 for i in context}
        finals = {i: [self._request(self.final_prompt, context[i], *info[i])] for i in info}
        for i, (final,) in call_engine(self.engine, rows, self.name, finals,
                                       self.sampling).items():
            text = final.text.strip()
            if text:
                rows.output("final_caption")[i] = text
            else:
                rows.fail(i, self.name, f"{self.name}: the model returned an empty final caption")
        return rows.to_table(self.writes)
