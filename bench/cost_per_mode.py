"""Cost per image by pipeline mode (benchmark 5, and the cache share of benchmark 2):
requests, prompt tokens (and the share served from the prefix cache) and output tokens
per image, per stage, for each verify / filter / integrate mode.

Every mode runs the job's stages over the same images in this process, on one vLLM engine
whose prefix cache is emptied before each mode (as a fresh run's would be), and is
summed up as a run's `_manifest.json` is.  Counts do not depend on Ray or on how busy the
machine is, so one engine start serves every mode.  With the smoke model (the default)
they describe its prompts and answers, whose lengths differ from a real model's.

    .venv/bin/python bench/cost_per_mode.py [--input examples/images.jsonl] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, model_path, plan_and_rows, run_stages

MODES = {
    "contrastive, paper": [],
    "yes_no, paper": ["verify_mode=yes_no"],
    "contrastive, second filter, paper": ["second_filter=true"],
    "contrastive, single": ["integrate_mode=single"],
    "yes_no, second filter, single (DataFlow-MM)": ["verify_mode=yes_no", "second_filter=true",
                                                    "integrate_mode=single"],
}


def per_image(summary: dict) -> dict:
    """Per-image costs from `summarize_batches`' counts."""
    ok = max(summary["ok"], 1)
    stages = summary["stages"]
    total = {k: sum(s[k] for s in stages.values())
             for k in ("requests", "prompt_tokens", "cached_tokens", "output_tokens")}
    return {"images": summary["ok"],
            **{k: round(v / ok, 1) for k, v in total.items()},
            "cache_hit_rate": {n: s["cache_hit_rate"] for n, s in stages.items()}}


def measure(listing: Path, model: str, engine, modes: dict[str, list[str]] = MODES
            ) -> dict[str, dict]:
    """`per_image` for each mode, on `engine` (a `LocalEngine` of `model`), from a cold
    prefix cache each time."""
    from scalecap_ray.io.manifest import summarize_batches

    results = {}
    for name, settings in modes.items():
        plan, rows = plan_and_rows(listing, model, settings)
        engine.reset_prefix_cache()
        _, rows = run_stages(plan, rows, engine)
        results[name] = per_image(summarize_batches(rows.to_batches()))
        print(f"{name}: {results[name]}", file=sys.stderr)
    return results


def table(results: dict[str, dict]) -> str:
    stages = ["caption", "verify", "questions", "answer", "filter", "integrate"]
    lines = ["| mode | requests / image | prompt tokens / image | output tokens / image | "
             "cached share by stage |", "|---|---|---|---|---|"]
    for name, r in results.items():
        cache = ", ".join(f"{s} {r['cache_hit_rate'][s]:.0%}" for s in stages
                          if s in r["cache_hit_rate"])
        lines.append(f"| {name} | {r['requests']:g} | {r['prompt_tokens']:g} | "
                     f"{r['output_tokens']:g} | {cache} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default=str(REPO / "examples" / "images.jsonl"))
    parser.add_argument("--out", help="Folder for the results (default: a temp dir).")
    parser.add_argument("--model", help="Model for both roles (default: the smoke model).")
    args = parser.parse_args()
    model = model_path(args.model)
    root = Path(args.out or tempfile.mkdtemp(prefix="scalecap-bench-"))
    from scalecap_ray.engine.vllm_engine import LocalEngine

    plan, _ = plan_and_rows(Path(args.input), model)
    with LocalEngine(plan.engines["vlm"][1].engine_config()) as engine:
        results = measure(Path(args.input), model, engine)
    root.mkdir(parents=True, exist_ok=True)
    (root / "cost_per_mode.json").write_text(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
