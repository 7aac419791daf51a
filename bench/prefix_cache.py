"""Benchmark 2: how much of the answer stage's prompts vLLM serves from its prefix cache,
by prompt layout and questions per image.

The answer stage sends every question about an image with the image.  With the image
first (our layout), every question after an image's first shares the image's tokens as a
prefix; with the image last, the prompts differ from the question on, so almost nothing is
shared.  "image first, primed" sends each image's first question alone, then the rest: it
shows what is lost when an image's questions are all scheduled in the same engine step,
before any of them has put the image's blocks into the cache.

    .venv/bin/python bench/prefix_cache.py [--images 8] [--questions 2 4 8 16]
        [--sizes 300 672] [--model PATH]

Image size matters: the share that can be cached is the image's share of the prompt.  The
bundled examples are about 300 pixels wide (about 100 image tokens on Qwen2.5-VL's
processor, a token per 28x28 pixels); photos resized to 672 pixels give about 430.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import model_path, save
from images import variant

LAYOUTS = ("image first", "image last", "image first, primed")


def engine_class():
    from scalecap_ray.engine.types import chat_messages
    from scalecap_ray.engine.vllm_engine import LocalEngine, VLLMEngine

    class LayoutEngine(VLLMEngine):
        """The project's engine, with the image optionally moved after the question."""

        image_last = False

        def render(self, req):
            if not self.image_last or req.image is None:
                return super().render(req)
            messages = chat_messages(req, {"type": "image"})
            user = messages[-1]
            user["content"] = user["content"][1:] + user["content"][:1]
            return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                      add_generation_prompt=True)

    class LayoutLocal(LocalEngine):
        @staticmethod
        async def _create(cfg):
            return LayoutEngine(cfg)

    return LayoutLocal


def questions(k: int) -> list[str]:
    from scalecap_ray.prompts import INSTRUCTION_STEM, POSITION_STEM

    objects = [f"the thing number {j}" for j in range(k // 2)]
    return [f"{INSTRUCTION_STEM} {o}." for o in objects] + \
        [f"{POSITION_STEM} {o}." for o in objects]


def image_bytes(i: int, size: int) -> bytes:
    import io

    im = variant(i)
    im = im.resize((size, round(im.height * size / im.width)))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def measure(model: str, n_images: int, counts: list[int], sizes: list[int]) -> list[dict]:
    from scalecap_ray.engine.config import EngineConfig
    from scalecap_ray.engine.types import ChatRequest, Sampling

    sampling = Sampling(max_tokens=16)
    results, first = [], 10_000  # image numbers: every run gets images no run used before
    # The smoke model's processor caps images at 224x224 pixels: lift the cap, as a real
    # model's (12.8 M pixels for Qwen2.5-VL) would.
    cfg = EngineConfig(model=model, engine_kwargs={
        "mm_processor_kwargs": {"max_pixels": 1024 * 1024}})
    with engine_class()(cfg) as local:
        for size, k in [(size, k) for size in sizes for k in counts]:
            for layout in LAYOUTS:
                local.engine.image_last = layout == "image last"
                batch = []
                for i in range(first, first + n_images):
                    data = image_bytes(i, size)
                    batch.append([ChatRequest(q, image=data, image_key=f"bench-{i}")
                                  for q in questions(k)])
                first += n_images
                start = time.perf_counter()
                if layout.endswith("primed"):
                    out = local.chat([reqs[0] for reqs in batch], sampling)
                    out += local.chat([r for reqs in batch for r in reqs[1:]], sampling)
                else:
                    out = local.chat([r for reqs in batch for r in reqs], sampling)
                seconds = time.perf_counter() - start
                prompt = sum(r.prompt_tokens for r in out)
                cached = sum(r.cached_tokens for r in out)
                results.append({"size": size, "questions": k, "layout": layout,
                                "requests": len(out),
                                "prompt_tokens_per_request": round(prompt / len(out), 1),
                                "cached_share": round(cached / prompt, 4),
                                "seconds": round(seconds, 3)})
                print(results[-1], file=sys.stderr)
    return results


def table(results: list[dict]) -> str:
    counts = sorted({r["questions"] for r in results})
    lines = ["| image width, prompt tokens | layout | "
             + " | ".join(f"{k} questions" for k in counts) + " |",
             "|---|---|" + "---|" * len(counts)]
    for size, layout in [(s, la) for s in sorted({r["size"] for r in results})
                         for la in LAYOUTS]:
        cells = [next(r for r in results if r["size"] == size and r["layout"] == layout
                      and r["questions"] == k) for k in counts]
        tokens = cells[0]["prompt_tokens_per_request"]
        lines.append(f"| {size} px, {tokens:g} | {layout} | " + " | ".join(
            f"{c['cached_share']:.0%} ({c['seconds']:.2f} s)" for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--questions", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 672],
                        help="Image widths in pixels.")
    parser.add_argument("--model", help="Model (default: the smoke model).")
    parser.add_argument("--out", default="prefix_cache.json")
    args = parser.parse_args()
    results = measure(model_path(args.model), args.images, args.questions, args.sizes)
    save({"images": args.images, "results": results}, Path(args.out))
    print(table(results))


if __name__ == "__main__":
    main()
