"""Caption quality on the toy world (part of `make bench`): held-out scenes through the
ScaleCap stages on the toy model, every mode, scored against the truth.

Each mode runs the job's stages in this process on one vLLM engine (the toy model), as
`cost_per_mode.py` does; the caption stage, the same in every mode under greedy decoding,
runs once.  Writes the results as JSON, `docs/quality.md` (`--doc`) and its plot.

    .venv/bin/python bench/quality.py [--images 200] [--seed 4242] [--out DIR] [--doc FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import plan_and_rows, save, stage_instance

MODES = {
    "contrastive, paper (default)": [],
    "yes_no, paper": ["verify_mode=yes_no"],
    "contrastive, second filter, paper": ["second_filter=true"],
    "contrastive, single": ["integrate_mode=single"],
    "yes_no, second filter, single (DataFlow-MM)": ["verify_mode=yes_no",
                                                    "second_filter=true",
                                                    "integrate_mode=single"],
}
TAUS = (-0.25, 0.0, 0.05, 0.15, 0.3, 0.5, 0.7)
DEFAULT_TAU = 0.15
DEFAULT = "contrastive, paper (default)"


def run_modes(listing: Path, truth: dict, model: str, modes: dict[str, list[str]]
              ) -> dict[str, dict]:
    """Every mode's scores (`evaluate_rows`) over the listing's images."""
    from scalecap_ray.engine import EngineConfig
    from scalecap_ray.engine.vllm_engine import LocalEngine
    from scalecap_ray.toy.evaluate import evaluate_rows

    results: dict[str, dict] = {}
    captioned = None
    with LocalEngine(EngineConfig(model=model)) as engine:
        for name, settings in modes.items():
            plan, table = plan_and_rows(listing, model, [*settings, "input.id_key=id"])
            stages = plan.stages
            if captioned is not None:  # the same in every mode: start from the first's
                table = captioned
                stages = [s for s in stages if s.name not in ("load", "caption")]
            start = time.perf_counter()
            for stage in stages:
                table = stage_instance(stage, engine)(table)
                if stage.name == "caption":
                    captioned = table
            rows = table.to_pylist()
            results[name] = evaluate_rows(rows, truth)
            results[name]["seconds"] = round(time.perf_counter() - start, 1)
            results[name]["score_groups"] = score_groups(rows, truth)
            results[name]["no_questions_rows"] = [
                {"id": r["id"], "golden": r["golden_sentences"], "final": r["final_caption"]}
                for r in rows if r.get("no_questions")]
            print(f"{name}: final CHAIR_s {results[name]['final']['chair_s']}, "
                  f"recall {results[name]['final']['recall']}", file=sys.stderr)
    return results


GROUPS = {"true": "true, not a partner", "partner": "true, the partner of an anchor",
          "prior": "hallucinated, the partner of an anchor",
          "misrecognition": "hallucinated, any other"}


def score_groups(rows: list[dict], truth: dict) -> dict[str, dict]:
    """Verify's sentence scores by what the sentence is (`metrics.sentence_group`):
    count and quartiles."""
    from statistics import quantiles

    from scalecap_ray.toy.metrics import sentence_group

    found: dict[str, list[float]] = {}
    for row in rows:
        scene = truth.get(str(row["id"]))
        pairs = zip(row.get("sentences") or [], row.get("sentence_scores") or [], strict=False)
        for sentence, score in pairs:
            group = sentence_group(scene, sentence) if scene else None
            if group is not None and score is not None:
                found.setdefault(group, []).append(score)
    out = {}
    for group in GROUPS:
        scores = found.get(group, [])
        q = quantiles(scores, n=4) if len(scores) > 1 else scores * 3
        out[group] = {"n": len(scores), **({"q25": round(q[0], 3), "median": round(q[1], 3),
                                           "q75": round(q[2], 3)} if scores else {})}
    return out


def groups_table(groups: dict[str, dict]) -> str:
    lines = ["| sentence | count | lower quartile | median | upper quartile |",
             "|---|---|---|---|---|"]
    for key, label in GROUPS.items():
        g = groups[key]
        lines.append(f"| {label} | {g['n']} | {_cell(g.get('q25'))} | "
                     f"{_cell(g.get('median'))} | {_cell(g.get('q75'))} |")
    return "\n".join(lines)


def _cell(x) -> str:
    return "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def _row(label: str, s: dict) -> str:
    cause = s["hallucinated_by_cause"]
    return (f"| {label} | {_cell(s['chair_i'])} | {_cell(s['chair_s'])} | "
            f"{_cell(s['recall'])} | {s['facts_correct_per_caption']:.2f} | "
            f"{s['facts_wrong_per_caption']:.2f} | {cause['prior']} / "
            f"{cause['misrecognition']} |")


HEADER = ("| caption | CHAIR_i | CHAIR_s | recall | facts ok / caption | wrong / caption | "
          "hallucinated objects (prior / misrecognition) |\n|---|---|---|---|---|---|---|")


def mode_table(results: dict[str, dict]) -> str:
    first = next(iter(results.values()))
    lines = [HEADER, _row("initial (every mode)", first["init"])]
    for name, r in results.items():
        lines.append(_row(f"golden, {name}", r["golden"]))
        lines.append(_row(f"**final, {name}**", r["final"]))
    return "\n".join(lines)


def checks_table(results: dict[str, dict]) -> str:
    lines = ["| mode | verify: dropped | precision | recall | answers wrong | filter: "
             "precision | recall | requests / image | prompt tokens / image | "
             "output tokens / image |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        v, a, per = r["verify"], r["answers"] or {}, r["per_image"]
        filtered = a.get("dropped", 0) > 0 or "filter" in name
        lines.append(
            f"| {name} | {v['dropped']} of {v['items']} ({v['wrong']} wrong) | "
            f"{_cell(v['precision'])} | {_cell(v['recall'])} | {a.get('wrong', '-')} of "
            f"{a.get('items', '-')} | {_cell(a.get('precision')) if filtered else '-'} | "
            f"{_cell(a.get('recall')) if filtered else '-'} | {per['requests']} | "
            f"{per['prompt_tokens']} | {per['output_tokens']} |")
    return "\n".join(lines)


def tau_table(sweep: dict[float, dict]) -> str:
    lines = ["| tau_sentence | verify precision | verify recall | final CHAIR_s | final "
             "CHAIR_i | final recall | facts ok / caption |", "|---|---|---|---|---|---|---|"]
    for tau, r in sweep.items():
        f, v = r["final"], r["verify"]
        lines.append(f"| {tau:g}{' (default)' if tau == DEFAULT_TAU else ''} | "
                     f"{_cell(v['precision'])} | {_cell(v['recall'])} | {_cell(f['chair_s'])} | "
                     f"{_cell(f['chair_i'])} | {_cell(f['recall'])} | "
                     f"{f['facts_correct_per_caption']:.2f} |")
    return "\n".join(lines)


def plot(sweep: dict[float, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taus = list(sweep)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key, label in (("chair_s", "final CHAIR_s"), ("recall", "final object recall")):
        ax.plot(taus, [sweep[t]["final"][key] for t in taus], marker="o", label=label)
    init = next(iter(sweep.values()))["init"]
    ax.axhline(init["chair_s"], color="grey", ls="--", lw=1, label="initial CHAIR_s")
    ax.axvline(DEFAULT_TAU, color="black", ls=":", lw=1)
    ax.set_xlabel("tau_sentence (contrastive verify)")
    ax.set_ylim(0, 1.02)
    ax.set_title("Toy world, held-out images: hallucination and recall by tau", fontsize=10)
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=4242,
                        help="Seed of the held-out scenes (the model trained on others).")
    parser.add_argument("--model", help="Toy checkpoint (default: the committed one).")
    parser.add_argument("--out", help="Folder for the JSON results (default: a temp dir).")
    parser.add_argument("--doc", help="Write the markdown report here (docs/quality.md).")
    args = parser.parse_args()
    if args.images < 1:
        raise SystemExit("--images must be at least 1")
    from scalecap_ray.toy import read_marker, toy_model_dir
    from scalecap_ray.toy.evaluate import read_truth, write_scenes

    model = str(toy_model_dir(args.model))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="quality-"))
    paths = write_scenes(out / "scenes", args.seed, args.images)
    truth = read_truth(paths["truth"])
    start = time.perf_counter()
    modes = dict(MODES)
    modes |= {f"tau {t:g}": [f"tau_sentence={t}"] for t in TAUS if t != DEFAULT_TAU}
    results = run_modes(paths["input"], truth, model, modes)
    sweep = {t: results[DEFAULT if t == DEFAULT_TAU else f"tau {t:g}"]
             for t in TAUS}
    seconds = round(time.perf_counter() - start)
    save({"images": args.images, "seed": args.seed, "seconds": seconds, "results": results},
         out / "quality.json")
    print(mode_table({k: results[k] for k in MODES}))
    print(tau_table(sweep))
    print(f"({seconds} s; results in {out})")
    if args.doc:
        doc = Path(args.doc)
        plot(sweep, doc.with_suffix(".png"))
        from quality_doc import write_doc

        write_doc(doc, {k: results[k] for k in MODES}, sweep, read_marker(model),
                  {"images": args.images, "seed": args.seed, "seconds": seconds,
                   "mode_table": mode_table({k: results[k] for k in MODES}),
                   "checks_table": checks_table(results), "tau_table": tau_table(sweep),
                   "groups_table": groups_table(results[DEFAULT]["score_groups"])})


if __name__ == "__main__":
    main()
