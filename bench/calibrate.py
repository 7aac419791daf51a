"""Calibrate the simulated engine's cost model (bench/simengine.py) on the real engine.

Times batches of prefill-heavy and decode-heavy requests on one in-process vLLM engine
and fits `seconds = step_s * steps + prefill_s * prefilled tokens + decode_s * decoded
tokens` by least squares; also measures how many prompt tokens an image adds.

The fit gives the engine's shape (what a step, a prefilled token and a decoded token cost
relative to each other); its speed is then set so that the workload costs REFERENCE_S,
whatever the speed of the host's CPU at the time: the same machine fitted steps of 2.85 to
5.02 ms on different runs (the workload's predicted time ranged over 36%), and the
simulated benchmarks' images/s and durations followed. `--keep-speed` keeps the fitted
speed (to simulate this host's CPU engine as it is).

    .venv/bin/python bench/calibrate.py [--model PATH] [--out cost.json] [--keep-speed]
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
from simengine import CostModel

# (requests, prompt words, max output tokens): prefill-heavy first, then decode-heavy.
WORKLOADS = [(16, 600, 1), (4, 150, 1), (32, 300, 1), (1, 10, 128), (16, 10, 64),
             (64, 10, 32), (8, 200, 32)]
# Seconds the workload above (both repeats) takes by the fit of 2026-11-22 on the 2-core
# CI machine (step 2.85 ms, prefill 17 us a token, decode 0.064 ms a sequence-step), the
# engine the simulated benchmarks of docs/benchmarks.md were first measured with. Change it
# with WORKLOADS.
REFERENCE_S = 2.52
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
        image = (REPO / "examples" / "images" / "house.png").read_bytes()
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


def at_reference_speed(cost: CostModel, rows: list[dict]) -> tuple[CostModel, float]:
    """`cost` scaled so that `rows`' work costs REFERENCE_S, and how many times slower than
    that the fitted engine was."""
    fitted_s = sum(cost.seconds(r["steps"], r["prefilled"], r["decoded"]) for r in rows)
    return cost.scaled(REFERENCE_S / fitted_s), fitted_s / REFERENCE_S


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="Model to calibrate on (default: the smoke model).")
    parser.add_argument("--out", default="cost.json")
    parser.add_argument("--keep-speed", action="store_true",
                        help="Write the fitted speed instead of the reference speed.")
    args = parser.parse_args()
    rows, image_tokens = measure(model_path(args.model))
    fitted = fit(rows, image_tokens)
    error = max(abs(fitted.seconds(r["steps"], r["prefilled"], r["decoded"]) - r["seconds"])
                / r["seconds"] for r in rows)
    reference, slower = at_reference_speed(fitted, rows)
    cost = fitted if args.keep_speed else reference
    Path(args.out).write_text(json.dumps(
        {"cost": asdict(cost), "fitted": asdict(fitted), "fitted_vs_reference": slower,
         "measured": rows, "max_relative_error": error}, indent=2) + "\n")
    print(f"fitted: step {fitted.step_s * 1e3:.2f} ms, prefill {fitted.prefill_s * 1e6:.1f} "
          f"us/token, decode {fitted.decode_s * 1e3:.3f} ms/sequence-step, image "
          f"{image_tokens} tokens; worst fit error {error:.0%}; {slower:.2f}x the reference "
          f"time; simulated: step {cost.step_s * 1e3:.2f} ms, prefill "
          f"{cost.prefill_s * 1e6:.1f} us/token, decode {cost.decode_s * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
