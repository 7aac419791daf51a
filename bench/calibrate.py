"""Calibrate the simulated engine's cost model (bench/simengine.py) on the real engine.

Times batches of prefill-heavy and decode-heavy requests on one in-process vLLM engine
and fits `seconds = step_s * steps + prefill_s * prefilled tokens + decode_s * decoded
tokens` by least squares; also measures how many prompt tokens an image adds, and how
many times the reference cost model's time (bench/reference_cost.json, which the
simulated benchmarks use by default) the fitted engine takes for the same work.

    .venv/bin/python bench/calibrate.py [--model PATH] [--out cost.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, model_path
from simengine import REFERENCE_COST, CostModel

# (requests, prompt words, max output tokens): prefill-heavy first, then decode-heavy.
WORKLOADS = [(16, 600, 1), (4, 150, 1), (32, 300, 1), (1, 10, 128), (16, 10, 64),
             (64, 10, 32), (8, 200, 32)]
VOCAB = ["red", "cup", "table", "chair", "dog", "cat", "tree", "house", "boat", "sign",
         "road", "sky", "grass", "stone"]


def _prompt(rng: random.Random, words: int) -> str:
    # A different first word for every request: nothing is served from the prefix cache.
    return f"{rng.random():.12f} " + " ".join(rng.choice(VOCAB) for _ in range(words))


def measure(model: str, repeats: int = 2) -> tuple[list[dict], int]:
    from scalecap_ray.engine.config import EngineConfig
    from scalecap_ray.engine.types import ChatRequest, Sampling
    from scalecap_ray.engine.vllm_engine import LocalEngine

    rng = random.Random(0)
    rows = []
    with LocalEngine(EngineConfig(model=model)) as engine:
        engine.chat([ChatRequest(_prompt(rng, 20))], Sampling(max_tokens=8))  # warm-up
        for _ in range(repeats):
            for n, words, max_tokens in WORKLOADS:
                reqs = [ChatRequest(_prompt(rng, words)) for _ in range(n)]
                start = time.perf_counter()
                res = engine.chat(reqs, Sampling(max_tokens=max_tokens))
                rows.append({"seconds": time.perf_counter() - start,
                             "steps": max(r.output_tokens for r in res),
                             "prefilled": sum(r.prompt_tokens - r.cached_tokens for r in res),
                             "decoded": sum(r.output_tokens for r in res)})
        image = (REPO / "examples" / "images" / "boat.png").read_bytes()
        with_image, without = engine.chat([ChatRequest("Hi.", image=image),
                                           ChatRequest("Hi.")], Sampling(max_tokens=1))
    return rows, with_image.prompt_tokens - without.prompt_tokens


def fit(rows: list[dict], image_tokens: int) -> CostModel:
    x = np.array([[r["steps"], r["prefilled"], r["decoded"]] for r in rows], dtype=float)
    y = np.array([r["seconds"] for r in rows])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    step_s, prefill_s, decode_s = (max(float(c), 0.0) for c in coef)
    return CostModel(step_s=step_s, prefill_s=prefill_s, decode_s=decode_s,
                     image_tokens=image_tokens)


def vs_reference(cost: CostModel, rows: list[dict], reference: CostModel) -> float:
    """How many times `reference`'s time `cost` predicts for the work in `rows`."""
    def total(model: CostModel) -> float:
        return sum(model.seconds(r["steps"], r["prefilled"], r["decoded"]) for r in rows)
    return total(cost) / total(reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="Model to calibrate on (default: the smoke model).")
    parser.add_argument("--out", default="cost.json")
    args = parser.parse_args()
    rows, image_tokens = measure(model_path(args.model))
    cost = fit(rows, image_tokens)
    error = max(abs(cost.seconds(r["steps"], r["prefilled"], r["decoded"]) - r["seconds"])
                / r["seconds"] for r in rows)
    slower = vs_reference(cost, rows, CostModel.load(REFERENCE_COST))
    Path(args.out).write_text(json.dumps(
        {"cost": asdict(cost), "measured": rows, "max_relative_error": error,
         "vs_reference": slower}, indent=2) + "\n")
    print(f"step {cost.step_s * 1e3:.2f} ms, prefill {cost.prefill_s * 1e6:.1f} us/token, "
          f"decode {cost.decode_s * 1e3:.3f} ms/sequence-step, image {image_tokens} tokens; "
          f"worst fit error {error:.0%}; {slower:.2f} x the reference model's time")


if __name__ == "__main__":
    main()
