"""Cost per image by pipeline mode (benchmark 5, and the cache share of benchmark 2):
requests, prompt tokens (and the share served from the prefix cache) and output tokens
per image, per stage, for each verify / filter / integrate mode.

Each mode is one `scalecap-ray run` on the same images; the numbers come from the run's
`_manifest.json`.  Token counts do not depend on how busy the machine is, so this
benchmark can run anywhere; with `--smoke` they describe the smoke model's prompts and
answers, whose lengths differ from a real model's.

    .venv/bin/python bench/cost_per_mode.py [--input examples/images.jsonl] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, model_path, run_pipeline

MODES = {
    "contrastive, paper": [],
    "yes_no, paper": ["verify_mode=yes_no"],
    "contrastive, second filter, paper": ["second_filter=true"],
    "contrastive, single": ["integrate_mode=single"],
    "yes_no, second filter, single (DataFlow-MM)": ["verify_mode=yes_no", "second_filter=true",
                                                    "integrate_mode=single"],
}


def per_image(manifest: dict) -> dict:
    ok = max(manifest["rows"]["ok"], 1)
    stages = manifest["stages"]
    total = {k: sum(s[k] for s in stages.values())
             for k in ("requests", "prompt_tokens", "cached_tokens", "output_tokens")}
    return {"images": manifest["rows"]["ok"],
            **{k: round(v / ok, 1) for k, v in total.items()},
            "cache_hit_rate": {n: s["cache_hit_rate"] for n, s in stages.items()}}


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
    parser.add_argument("--out", help="Folder for the runs' outputs (default: a temp dir).")
    parser.add_argument("--model", help="Model for both roles (default: the smoke model).")
    args = parser.parse_args()
    model = model_path(args.model)
    root = Path(args.out or tempfile.mkdtemp(prefix="scalecap-bench-"))
    results = {}
    for i, (name, settings) in enumerate(MODES.items()):
        run = run_pipeline(Path(args.input), root / f"mode{i}", model, settings)
        results[name] = per_image(run["manifest"])
        print(f"{name}: {results[name]}", file=sys.stderr)
    (root / "cost_per_mode.json").write_text(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
