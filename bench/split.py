"""Benchmark 3, second half: splitting 8 simulated GPUs between a VLM and an LLM engine
whose costs differ, and whether `scalecap-ray plan --profile` finds the best split.

The VLM runs `--factor` times slower than the calibrated CPU engine, the LLM (an engine
of its own) `--llm-factor` times: by default 4 times the VLM's cost, as a 32B LLM beside a
7B VLM.  A pilot run with one replica of each gives the profile (each engine's busy
replica-seconds per image); the split it suggests for one node of 8 GPUs is compared
with the throughput measured for every split of the 8 GPUs.

    .venv/bin/python bench/split.py --cost cost.json [--images 160] [--pilot 32]
        [--factor 10] [--llm-factor 40] [--vlm-replicas 2 3 4 5 6 7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import model_path, save
from images import write_images
from scaling import MODEL_STAGES, simulated

from scalecap_ray.config import load_config
from scalecap_ray.pipeline import plan_scalecap_job
from scalecap_ray.resources import split
from scalecap_ray.resources.cluster import ClusterShape

GPUS = 8
BATCH = [f"stages.{s}.batch_size=32" for s in MODEL_STAGES]


def suggestion(pilot_out: Path) -> tuple[split.Profile, split.Split, dict]:
    """What `plan --profile` says for the pilot on one node of 8 GPUs."""
    model = model_path(None)
    plan = plan_scalecap_job(load_config(None, [f"vlm.model={model}", f"llm.model={model}",
                                                "llm.seed=1"]))
    cluster = ClusterShape.from_description(f'[{{"cpus": 16, "gpus": {GPUS}}}]')
    profile = split.read_profile(str(pilot_out))
    split.check_profile(profile, {k: dep for k, (_, dep) in plan.engine_groups().items()})
    best = split.suggest_split(profile.seconds_per_image,
                               lambda replicas: plan.placement(cluster, replicas))
    return profile, best, plan.engine_groups()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cost", required=True, help="cost.json from bench/calibrate.py")
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--pilot", type=int, default=32, help="Images in the pilot run.")
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--llm-factor", type=float, default=40.0)
    parser.add_argument("--vlm-replicas", type=int, nargs="*", default=list(range(2, GPUS)))
    parser.add_argument("--out", help="Folder for images, outputs and results.")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="scalecap-bench-"))
    cost = Path(args.cost).resolve()
    simulate = lambda listing, out, overrides: simulated(  # noqa: E731
        listing, out, cost, args.factor, [*BATCH, *overrides], args.llm_factor)

    simulate(write_images(args.pilot, root / "images"), root / "pilot",
             ["vlm.replicas=1", "llm.replicas=1"])
    profile, best, _ = suggestion(root / "pilot")
    print(split.describe(profile, best, {"vlm": 1, "llm": 1}), file=sys.stderr)
    listing = write_images(args.images, root / "images")
    rows = []
    for v in args.vlm_replicas:
        replicas = {"vlm": v, "llm": GPUS - v}
        res = simulate(listing, root / f"split-{v}",
                       [f"{k}.replicas={n}" for k, n in replicas.items()])
        predicted, limit = split.rate(replicas, profile.seconds_per_image)
        rows.append({**replicas, "images_per_s": res["images_per_s"],
                     "predicted_images_per_s": round(predicted, 3), "limited_by": limit,
                     "busy_share": {k: e["busy_share"]
                                    for k, e in res["timing"]["engines"].items()}})
        print(rows[-1], file=sys.stderr)
    measured_best = max(rows, key=lambda r: r["images_per_s"])
    result = {"factor": args.factor, "llm_factor": args.llm_factor, "images": args.images,
              "profile": profile.seconds_per_image, "pilot_images": profile.images,
              "suggested": best.replicas, "suggested_images_per_s": round(best.images_per_s, 3),
              "measured_best": {"vlm": measured_best["vlm"], "llm": measured_best["llm"]},
              "splits": rows}
    print(table(result))
    save(result, root / "split.json")


def table(result: dict) -> str:
    lines = ["| VLM + LLM replicas | images/s measured | predicted from the pilot | "
             "limited by | busy VLM / LLM |", "|---|---|---|---|---|"]
    for r in result["splits"]:
        mark = " (suggested)" if (r["vlm"], r["llm"]) == tuple(
            result["suggested"].get(k) for k in ("vlm", "llm")) else ""
        busy = r["busy_share"]
        lines.append(f"| {r['vlm']} + {r['llm']}{mark} | {r['images_per_s']:.2f} | "
                     f"{r['predicted_images_per_s']:.2f} | {r['limited_by']} | "
                     f"{busy.get('vlm', 0):.0%} / {busy.get('llm', 0):.0%} |")
    s = result["suggested"]
    lines.append(f"\nsuggested vlm={s['vlm']} llm={s['llm']} (predicted "
                 f"{result['suggested_images_per_s']:.2f} images/s); measured best "
                 f"vlm={result['measured_best']['vlm']} llm={result['measured_best']['llm']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
