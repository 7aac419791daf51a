"""How much memory a model's weights take, and how much a GPU has: the numbers behind the
memory check that `plan` and `run` make before any engine starts.

Sizes are in GB (10^9 bytes).  They are estimates made to reject what cannot work (a 72B
model at TP 2 on 80 GB GPUs), not to predict vLLM's exact memory use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from scalecap_ray.config import ModelDeployment

# Parameter counts (billions) of the models the example configs use, from their model
# cards; the weights of these checkpoints are bf16.
KNOWN_PARAMS_B: dict[str, float] = {
    "Qwen/Qwen2-VL-2B-Instruct": 2.21,
    "Qwen/Qwen2-VL-7B-Instruct": 8.29,
    "Qwen/Qwen2-VL-72B-Instruct": 73.4,
    "Qwen/Qwen2-72B-Instruct": 72.7,
    "Qwen/Qwen2.5-VL-3B-Instruct": 3.75,
    "Qwen/Qwen2.5-VL-7B-Instruct": 8.29,
    "Qwen/Qwen2.5-VL-32B-Instruct": 33.5,
    "Qwen/Qwen2.5-VL-72B-Instruct": 73.4,
    "Qwen/Qwen2.5-7B-Instruct": 7.62,
    "Qwen/Qwen2.5-14B-Instruct": 14.8,
    "Qwen/Qwen2.5-32B-Instruct": 32.8,
    "Qwen/Qwen2.5-72B-Instruct": 72.7,
}

# Memory per GPU by Ray accelerator type (the `accelerator_type:X` resource Ray sets on
# nodes); the smaller variant where a name covers two.
GPU_MEMORY_GB: dict[str, float] = {
    "T4": 16, "V100": 16, "L4": 24, "A10G": 24, "A10": 24, "L40S": 48, "L40": 48,
    "A100": 40, "A100-40G": 40, "A100-80G": 80, "H100": 80, "H800": 80, "H20": 96,
    "H200": 141, "B200": 180, "GB200": 186,
}

BYTES_PER_PARAM = {"float32": 4.0, "float": 4.0, "auto": 2.0, "bfloat16": 2.0,
                   "float16": 2.0, "half": 2.0}
# Quantised checkpoints say so in their names.
QUANTIZED = ((re.compile(r"int4|awq|gptq|4bit|nf4", re.I), 0.5),
             (re.compile(r"int8|fp8|8bit", re.I), 1.0))
_PARAMS_IN_NAME = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)[bB](?![a-zA-Z])")
# vLLM needs room beside the weights for activations and at least some KV cache.
WEIGHTS_SHARE_LIMIT = 0.9


@dataclass(frozen=True)
class WeightsSize:
    gb: float
    source: str  # how it was found, for the plan's output


def _local_size(path: Path) -> float | None:
    for pattern in ("*.safetensors", "*.bin", "*.pt"):
        files = list(path.glob(pattern))
        if files:
            return sum(f.stat().st_size for f in files) / 1e9
    return None


def weights_size(dep: ModelDeployment) -> WeightsSize | None:
    """The size of `dep`'s weights, or None when nothing tells."""
    if dep.weights_gb is not None:
        return WeightsSize(dep.weights_gb, "weights_gb")
    local = Path(dep.model)
    if local.is_dir():
        size = _local_size(local)
        return WeightsSize(size, "checkpoint files") if size is not None else None
    per_param = BYTES_PER_PARAM.get(dep.dtype, 2.0)
    for pattern, quantized in QUANTIZED:
        if pattern.search(dep.model):
            per_param = quantized
            break
    if dep.model in KNOWN_PARAMS_B:
        return WeightsSize(KNOWN_PARAMS_B[dep.model] * per_param, "known model size")
    found = _PARAMS_IN_NAME.findall(dep.model.rsplit("/", 1)[-1])
    if found:
        return WeightsSize(float(found[-1]) * per_param, "estimated from the name")
    return None


def gpu_memory_gb(accelerator_type: str | None) -> float | None:
    """Memory of one GPU of a Ray accelerator type, if known."""
    return GPU_MEMORY_GB.get(accelerator_type) if accelerator_type else None
