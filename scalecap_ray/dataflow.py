"""A DataFlow-MM-compatible facade, for users coming from its ScaleCap operator.

    from scalecap_ray.dataflow import (FileStorage, ImageScaleCaptionGenerate,
        ImageScaleCaptionGenerateConfig, LocalModelVLMServing_vllm)

    model = LocalModelVLMServing_vllm(hf_model_name_or_path="Qwen/Qwen2.5-VL-3B-Instruct")
    storage = FileStorage(first_entry_file_name="images.jsonl", cache_path="./cache",
                          file_name_prefix="scalecap", cache_type="jsonl")
    op = ImageScaleCaptionGenerate(vlm_serving=model, config=ImageScaleCaptionGenerateConfig())
    op.run(storage=storage.step(), image_key="image", output_key="scalecap_record")

The operators run the same Ray pipeline as `scalecap-ray run`; they only translate the
storage and the record format.  As in DataFlow-MM, relative image paths are taken relative
to the current directory.  Unlike DataFlow-MM (temperature 0.7, top-p 0.9), decoding is
greedy by default, so the same input gives the same captions; pass `vllm_temperature=0.7,
vllm_top_p=0.9` for DataFlow-MM's sampling.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalecap_ray.config import ScaleCapConfig
from scalecap_ray.pipeline import Plan, plan_caption_job, plan_scalecap_job
from scalecap_ray.runner import run_plan

_DESC = {
    "zh": "ImageScaleCaptionGenerate 按 ScaleCap 方法为图像生成高信息密度的描述：初始描述、"
          "逐句视觉自检（黄金句）、针对对象与位置的追问与回答、可选的答案二次过滤，"
          "最后整合为一段完整的长描述。",
    "en": "ImageScaleCaptionGenerate writes dense, high-information captions the ScaleCap "
          "way: an initial caption, a sentence-level visual self-check (golden sentences), "
          "follow-up questions about objects and their positions and their answers, an "
          "optional second filter on the answers, and a final integrated long caption.",
}


class FileStorage:
    """DataFlow-style step storage over JSONL files: step 0 reads `first_entry_file_name`;
    step n writes `{cache_path}/{file_name_prefix}_step{n+1}.jsonl`, which step n+1 reads."""

    def __init__(self, first_entry_file_name: str, cache_path: str = "./cache",
                 file_name_prefix: str = "dataflow_cache_step", cache_type: str = "jsonl",
                 **_ignored: Any):
        if cache_type != "jsonl":
            raise ValueError(
                f"FileStorage: cache_type {cache_type!r} is not supported; use 'jsonl'")
        self.first_entry_file_name = first_entry_file_name
        self.cache_path, self.file_name_prefix = cache_path, file_name_prefix
        self.operator_step = -1

    def step(self) -> FileStorage:
        self.operator_step += 1
        return self

    def _file(self, step: int) -> Path:
        return Path(self.cache_path) / f"{self.file_name_prefix}_step{step}.jsonl"

    def read_path(self) -> Path:
        step = max(self.operator_step, 0)
        return Path(self.first_entry_file_name) if step == 0 else self._file(step)

    def read(self) -> list[dict[str, Any]]:
        with open(self.read_path(), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def write(self, rows: list[dict[str, Any]]) -> Path:
        path = self._file(max(self.operator_step, 0) + 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path


class LocalModelVLMServing_vllm:  # DataFlow-MM's class name, kept for drop-in use
    """A model served by local vLLM engines, described the DataFlow-MM way."""

    def __init__(self, hf_model_name_or_path: str, hf_cache_dir: str | None = None,
                 vllm_tensor_parallel_size: int = 1, vllm_temperature: float = 0.0,
                 vllm_top_p: float = 1.0, vllm_max_tokens: int = 1024,
                 vllm_max_model_len: int | None = None,
                 vllm_gpu_memory_utilization: float | None = None, vllm_seed: int = 42,
                 **_ignored: Any):
        self.model = {"model": hf_model_name_or_path, "download_dir": hf_cache_dir,
                      "tensor_parallel_size": vllm_tensor_parallel_size,
                      "max_model_len": vllm_max_model_len,
                      "gpu_memory_utilization": vllm_gpu_memory_utilization}
        self.sampling = {"temperature": vllm_temperature, "top_p": vllm_top_p,
                         "seed": vllm_seed}
        self.max_tokens = vllm_max_tokens

    def config(self, **fields: Any) -> ScaleCapConfig:
        """The job config for this serving: one model for every role."""
        stage = dict(self.sampling)
        stages = {name: stage for name in ("caption", "questions", "answer", "integrate")}
        return ScaleCapConfig.model_validate({"vlm": self.model, "llm": self.model,
                                              "stages": stages, **fields})


@dataclass
class ImageScaleCaptionGenerateConfig:
    tau_sentence: float = 0.15
    max_questions: int = 20
    max_init_tokens: int = 1024
    max_answer_tokens: int = 256
    second_filter: bool = False


def _run_rows(plan: Plan, rows: list[dict[str, Any]], image_key: str) -> dict[str, dict]:
    """Run `plan` over `rows` (their `image_key` holding a path or a list of paths) and
    return the output rows by input index."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="scalecap-dataflow-") as tmp:
        src = Path(tmp) / "input.jsonl"
        with open(src, "w", encoding="utf-8") as f:
            for i, row in enumerate(rows):
                ref = row.get(image_key)
                refs = ref if isinstance(ref, list) else [ref]
                resolved = [os.path.abspath(r) if isinstance(r, str) else r for r in refs]
                f.write(json.dumps({"image": resolved, "_row": i}) + "\n")
        run_plan(plan, str(src), str(Path(tmp) / "out"))
        return {r["id"]: r for r in pq.read_table(Path(tmp) / "out").to_pylist()}


class ImageScaleCaptionGenerate:
    """DataFlow-MM's ScaleCap operator on the scalecap-ray pipeline."""

    def __init__(self, vlm_serving: LocalModelVLMServing_vllm,
                 config: ImageScaleCaptionGenerateConfig | None = None):
        self.serving = vlm_serving
        self.op_config = config or ImageScaleCaptionGenerateConfig()

    @staticmethod
    def get_desc(lang: str = "zh") -> str:
        return _DESC["zh" if lang == "zh" else "en"]

    def run(self, storage: FileStorage, image_key: str = "image",
            output_key: str = "scalecap_record") -> str:
        cfg = self.op_config
        config = self.serving.config(
            tau_sentence=cfg.tau_sentence, max_questions=cfg.max_questions,
            max_init_tokens=cfg.max_init_tokens, max_answer_tokens=cfg.max_answer_tokens,
            second_filter=cfg.second_filter, input={"id_key": "_row"})
        rows = storage.read()
        results = _run_rows(plan_scalecap_job(config), rows, image_key)
        for i, row in enumerate(rows):
            row[output_key] = _record(results[str(i)])
        return str(storage.write(rows))


def _record(result: dict[str, Any]) -> dict[str, Any]:
    record = dict(result["scalecap_record"])
    if result["error"] is None:
        return record
    # A failed row keeps what its earlier stages produced, beside the reason; with no
    # initial caption at all it is marked the way DataFlow-MM marks a failed image.
    return {**record, "init_caption": record["init_caption"] or "error",
            "final_caption": record["final_caption"] or "", "error": result["error"]}


class ImageCaptionGenerate:
    """DataFlow-MM's plain caption operator: one caption per row (the first image of a
    row that lists several)."""

    def __init__(self, llm_serving: LocalModelVLMServing_vllm):
        self.serving = llm_serving

    def run(self, storage: FileStorage, multi_modal_key: str = "image",
            output_key: str = "caption") -> str:
        config = self.serving.config(max_init_tokens=self.serving.max_tokens,
                                     input={"id_key": "_row"})
        rows = storage.read()
        results = _run_rows(plan_caption_job(config, output_key=output_key), rows,
                            multi_modal_key)
        for i, row in enumerate(rows):
            result = results[str(i)]
            row[output_key] = result[output_key] if result["error"] is None else ""
            if result["error"] is not None:
                row["error"] = result["error"]
        return str(storage.write(rows))
