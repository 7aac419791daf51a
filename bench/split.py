"""Benchmark 3, second half: splitting 8 simulated GPUs between a VLM and an LLM engine
whose costs differ, and whether `scalecap-ray plan --profile` finds the best split.

The VLM runs `--factor` times slower than the cost model (by default the CPU engine's,
bench/reference_cost.json), the LLM (an engine of its own) `--llm-factor` times: by
default 4 times the VLM's cost, as a 32B LLM beside a 7B VLM.  A pilot run with one
replica of each gives the profile (each engine's busy replica-seconds per image); the
split it suggests for one node of 8 GPUs is compared with the throughput measured for
every split of the 8 GPUs.  Each model stage sends `--per-replica` images per call and
replica of its engine (its batch grows with the replicas), so a replica sees the same
load in the pilot as in every split.

    .venv/bin/python bench/split.py [--cost cost.json] [--images 240] [--pilot 32]
        [--per-replica 16] [--factor 10] [--llm-factor 20]
        [--vlm-replicas 1 2 ... 7 | --around K]

`--around K` measures only the splits within K VLM replicas of the suggested one (what
`make bench` does, to stay within its time).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import model_path, save
from images import write_images
from scaling import simulated
from simengine import REFERENCE_COST

from scalecap_ray.config import load_config
from scalecap_ray.pipeline import plan_scalecap_job
from scalecap_ray.resources import split
from scalecap_ray.resources.cluster import ClusterShape

GPUS = 8


def separate_plan():
    model = model_path(None)
    return plan_scalecap_job(load_config(None, [f"vlm.model={model}", f"llm.model={model}",
                                                "llm.seed=1"]))


def settings(replicas: dict[str, int], per_replica: int) -> list[str]:
    """Replica counts, and each model stage's batch: `per_replica` images per replica of
    the engine it calls."""
    stages = [f"stages.{s.name}.batch_size={per_replica * replicas[s.role]}"
              for s in separate_plan().stages if s.role is not None]
    return [*(f"{k}.replicas={n}" for k, n in replicas.items()), *stages]


def suggestion(pilot_out: Path) -> tuple[split.Profile, split.Split]:
    """What `plan --profile` says for the pilot on one node of 8 GPUs."""
    plan = separate_plan()
    cluster = ClusterShape.from_description(f'[{{"cpus": 16, "gpus": {GPUS}}}]')
    profile = split.read_profile(str(pilot_out))
    split.check_profile(profile, {k: dep for k, (_, dep) in plan.engine_groups().items()})
    best = split.suggest_split(profile.seconds_per_image,
                               lambda replicas: plan.placement(cluster, replicas))
    return profile, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cost", default=str(REFERENCE_COST),
                        help="Cost model of the simulated engine: a bench/calibrate.py output "
                             "(default: bench/reference_cost.json).")
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--pilot", type=int, default=32, help="Images in the pilot run.")
    parser.add_argument("--per-replica", type=int, default=16)
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--llm-factor", type=float, default=20.0)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--vlm-replicas", type=int, nargs="*", default=list(range(1, GPUS)))
    which.add_argument("--around", type=int, metavar="K")
    parser.add_argument("--out", help="Folder for images, outputs and results.")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="scalecap-bench-"))
    cost = Path(args.cost).resolve()
    simulate = lambda listing, out, replicas: simulated(  # noqa: E731
        listing, out, cost, args.factor, settings(replicas, args.per_replica),
        args.llm_factor)

    simulate(write_images(args.pilot, root / "images"), root / "pilot", {"vlm": 1, "llm": 1})
    profile, best = suggestion(root / "pilot")
    print(split.describe(profile, best, {"vlm": 1, "llm": 1}), file=sys.stderr)
    listing = write_images(args.images, root / "images")
    splits = args.vlm_replicas if args.around is None else [
        v for v in range(best.replicas["vlm"] - args.around,
                         best.replicas["vlm"] + args.around + 1) if 1 <= v < GPUS]
    rows = []
    for v in splits:
        replicas = {"vlm": v, "llm": GPUS - v}
        res = simulate(listing, root / f"split-{v}", replicas)
        predicted, limit = split.rate(replicas, profile.seconds_per_image)
        rows.append({**replicas, "images_per_s": res["images_per_s"],
                     "predicted_images_per_s": round(predicted, 3), "limited_by": limit,
                     "busy_share": {k: e["busy_share"]
                                    for k, e in res["timing"]["engines"].items()}})
        print(rows[-1], file=sys.stderr)
    measured_best = max(rows, key=lambda r: r["images_per_s"])
    result = {"factor": args.factor, "llm_factor": args.llm_factor, "images": args.images,
              "per_replica": args.per_replica,
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
