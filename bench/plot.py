"""The benchmark plot (docs/benchmarks.png): scaling over simulated GPUs, the split of
8 simulated GPUs between a VLM and an LLM engine, the answer stage's cached share by
layout, and the pipeline's time split against the bound (on the CPU engine and, where
measured, on the simulated one).

    .venv/bin/python bench/plot.py RESULTS_DIR [--png docs/benchmarks.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matplotlib.figure import Figure

REPO = Path(__file__).resolve().parents[1]


def plot(results: Path, png: Path) -> None:
    scaling = json.loads((results / "scaling" / "scaling.json").read_text())["scaling"]
    cache = json.loads((results / "prefix_cache.json").read_text())["results"]
    bound = json.loads((results / "bound" / "engine_bound.json").read_text())
    sim_file = results / "bound-simulated" / "engine_bound_simulated.json"
    sim = json.loads(sim_file.read_text()) if sim_file.exists() else None
    split = json.loads((results / "split" / "split.json").read_text())
    fig = Figure(figsize=(17, 4), layout="constrained")
    a, d, b, c = fig.subplots(1, 4)

    reps = [r["replicas"] for r in scaling]
    base = scaling[0]["images_per_s"] / scaling[0]["replicas"]
    a.plot(reps, [r["images_per_s"] for r in scaling], "o-", label="measured")
    a.plot(reps, [base * r for r in reps], "--", color="grey", label="linear")
    a.plot(reps, [0.9 * base * r for r in reps], ":", color="grey", label="0.9 x linear")
    a.set(title="Scaling\n(simulated GPUs)", xlabel="engine replicas", ylabel="images / s",
          xticks=reps)
    a.legend()

    labels = [f"{r['vlm']}+{r['llm']}" for r in split["splits"]]
    suggested = f"{split['suggested']['vlm']}+{split['suggested']['llm']}"
    d.bar(labels, [r["images_per_s"] for r in split["splits"]], label="measured",
          color=["tab:orange" if x == suggested else "tab:blue" for x in labels])
    d.plot(labels, [r["predicted_images_per_s"] for r in split["splits"]], "o--",
           color="grey", label="predicted from the pilot")
    d.set(title=f"8 GPUs split, LLM {split['llm_factor'] / split['factor']:g}x the VLM's "
                "cost\n(orange: the suggested split)", xlabel="VLM + LLM replicas",
          ylabel="images / s", ylim=(0, 1.3 * max(r["predicted_images_per_s"]
                                                for r in split["splits"])))
    d.legend(loc="upper right", fontsize="small")

    size = max(r["size"] for r in cache)
    for layout in ("image first", "image last"):
        rows = [r for r in cache if r["layout"] == layout and r["size"] == size]
        b.plot([r["questions"] for r in rows], [100 * r["cached_share"] for r in rows],
               "o-", label=layout)
    b.axhline(80, color="grey", linestyle=":", label="80% target")
    b.set(title=f"Answer stage: prompt tokens from cache\n({size} px images)",
          xlabel="questions per image", ylabel="% of prompt tokens", ylim=(0, 100))
    counts = sorted({r["questions"] for r in cache})
    b.set_xscale("log", base=2)
    b.set_xticks(counts, labels=[str(k) for k in counts])
    b.minorticks_off()
    b.legend(loc="center right")

    runs = [("CPU vLLM", bound)] + ([("simulated", sim)] if sim else [])
    bars = [f"{who}, {engine}" for engine, _ in runs for who in ("bound", "pipeline")]
    left = [0.0] * len(bars)
    for name in bound["split_s"]:
        widths = [r["split_s"][name][side] for _, r in runs for side in (0, 1)]
        c.barh(bars, widths, left=left, label=name.split(" (")[0])
        left = [x + w for x, w in zip(left, widths, strict=True)]
    c.invert_yaxis()
    c.set(title="pipeline / bound\n" + "\n".join(
              f"{engine} ({r['images']} images) {r['ratio']:.2f}" for engine, r in runs),
          xlabel="seconds")
    c.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    fig.savefig(png, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results")
    parser.add_argument("--png", default=str(REPO / "docs" / "benchmarks.png"))
    args = parser.parse_args()
    plot(Path(args.results), Path(args.png))
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
