"""Stage A: the VLM describes the image (prompt P1).  Also the whole of the plain caption
job (DataFlow-MM's ImageCaptionGenerate), with its own prompt and output column."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from scalecap_ray.engine.pool import EngineSpec, connect
from scalecap_ray.engine.types import ChatEngine, ChatRequest, Sampling
from scalecap_ray.stages.batch import IMAGE_READS, Rows, call_engine, image_args


class CaptionStage:
    """Reads the image, writes its caption (`init_caption`, or `output` if given)."""

    name = "caption"
    reads = IMAGE_READS
    writes: ClassVar[dict[str, pa.DataType]] = {"init_caption": pa.string()}

    def __init__(self, engine: EngineSpec | ChatEngine, *, prompt: str, sampling: Sampling,
                 system: str | None = None, output: str = "init_caption"):
        self.engine = connect(engine)
        self.prompt, self.sampling, self.system, self.output = prompt, sampling, system, output
        self.writes = {output: pa.string()}  # type: ignore[misc]

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = Rows(batch, self.reads)
        requests = {
            i: [ChatRequest(self.prompt, system=self.system, **image_args(rows, i))]
            for i in rows.active()
        }
        captions = rows.output(self.output)
        for i, (result,) in call_engine(self.engine, rows, self.name, requests,
                                        self.sampling).items():
            text = result.text.strip()
            if text:
                captions[i] = text
            else:
                rows.fail(i, self.name, f"{self.name}: the model returned an empty caption")
        return rows.to_table(self.writes)
