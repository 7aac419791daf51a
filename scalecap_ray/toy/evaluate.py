"""`scalecap-ray eval`: score a run's output against the toy world's truth, and
`scalecap-ray toy-scenes`: draw a set of scenes with their truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scalecap_ray.toy.metrics import (
    CaptionTally,
    DropTally,
    answer_is_wrong,
    sentence_is_hallucinated,
)
from scalecap_ray.toy.world import Scene, WorldParams, scenes

# Held-out scenes: anchors carry their partner half the time (90% in training images).
HELD_OUT = WorldParams()

# Caption fields scored, by the key they get in the result.
CAPTION_FIELDS = {"init": "init_caption", "golden": "golden_sentences",
                  "final": "final_caption", "caption": "caption"}
OTHER_COLUMNS = ("id", "error", "sentences", "answers", "answer_kept", "no_questions",
                 "requests", "prompt_tokens", "output_tokens")


def write_scenes(out: str | Path, seed: int, count: int,
                 params: WorldParams = HELD_OUT) -> dict[str, Path]:
    """Draw `count` scenes (the same for the same seed) into `out`: `images/`, an input
    JSONL for `scalecap-ray run` (`scenes.jsonl`: id, image) and the truth keyed by the
    same ids (`truth.jsonl`)."""
    from scalecap_ray.toy.draw import draw_scene

    folder = Path(out)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    inputs, truths = [], []
    for i, scene in enumerate(scenes(seed, count, params)):
        name = f"images/scene-{seed}-{i:05d}.png"
        draw_scene(scene, seed * 1_000_003 + i).save(folder / name)
        row_id = f"toy-{seed}-{i:05d}"
        inputs.append({"id": row_id, "image": name})
        truths.append({"id": row_id, **scene.to_json()})
    paths = {"input": folder / "scenes.jsonl", "truth": folder / "truth.jsonl"}
    for key, rows in (("input", inputs), ("truth", truths)):
        paths[key].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


def read_truth(path: str | Path) -> dict[str, Scene]:
    truth = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                truth[str(row["id"])] = Scene.from_json(row)
            except KeyError as exc:
                raise ValueError(f"{path}:{n}: not a truth record (missing {exc})") from None
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a truth record ({exc})") from None
    return truth


def _rows(output: str) -> list[dict[str, Any]]:
    from scalecap_ray.io.output import OutputFolder

    folder = OutputFolder(output)
    if not folder.parts():
        raise ValueError(f"{output}: no output part files to score")
    dataset = folder.dataset()
    names = set(dataset.schema.names)
    wanted = [c for c in (*CAPTION_FIELDS.values(), *OTHER_COLUMNS) if c in names]
    return dataset.to_table(columns=wanted).to_pylist()


def evaluate(output: str, truth_path: str | Path) -> dict[str, Any]:
    """Quality of every caption field of `output` against the truth; see `metrics`."""
    truth = read_truth(truth_path)
    return evaluate_rows(_rows(output), truth)


def evaluate_rows(rows: list[dict[str, Any]], truth: dict[str, Scene]) -> dict[str, Any]:
    """`evaluate` over output rows (dicts with at least `id`)."""
    tallies: dict[str, CaptionTally] = {}
    verify, answers = DropTally(), DropTally()
    scored = unknown = failed = no_questions = 0
    cost = {"requests": 0, "prompt_tokens": 0, "output_tokens": 0}
    for row in rows:
        scene = truth.get(str(row["id"]))
        if scene is None:
            unknown += 1
            continue
        scored += 1
        failed += row.get("error") is not None
        no_questions += bool(row.get("no_questions"))
        usage = row.get("stage_usage") or []  # rows not yet finalized have no totals
        for key in cost:
            total = row.get(key)
            cost[key] += total if total is not None else sum(u.get(key) or 0 for u in usage)
        for key, column in CAPTION_FIELDS.items():
            value = row.get(column)
            if value is None:
                continue
            text = " ".join(value) if isinstance(value, list) else value
            tallies.setdefault(key, CaptionTally()).add(text, scene)
        golden = set(row.get("golden_sentences") or [])
        for sentence in row.get("sentences") or []:
            verify.add(sentence_is_hallucinated(scene, sentence), sentence not in golden)
        kept = row.get("answer_kept") or []
        for answer, keep in zip(row.get("answers") or [], kept, strict=False):
            if answer:
                answers.add(answer_is_wrong(scene, answer), not keep)
    return {
        "rows": len(rows), "scored": scored, "not_in_truth": unknown, "failed": failed,
        "no_questions": no_questions,
        **{key: tally.summary() for key, tally in tallies.items()},
        "verify": verify.summary() if verify.items else None,
        "answers": answers.summary() if answers.items else None,
        "per_image": {k: round(v / scored, 2) if scored else None for k, v in cost.items()},
    }


def report_lines(result: dict[str, Any]) -> list[str]:
    """The result as a small table for the terminal."""
    lines = [f"{result['scored']} image(s) scored ({result['failed']} failed, "
             f"{result['not_in_truth']} not in the truth, {result['no_questions']} without "
             "questions)",
             f"{'caption':8} {'CHAIR_i':>8} {'CHAIR_s':>8} {'recall':>7} {'facts ok':>9} "
             f"{'wrong':>6}  hallucinated (prior / misrecognition)"]
    for key in CAPTION_FIELDS:
        s = result.get(key)
        if s is None:
            continue
        cause = s["hallucinated_by_cause"]
        lines.append(f"{key:8} {_num(s['chair_i']):>8} {_num(s['chair_s']):>8} "
                     f"{_num(s['recall']):>7} {s['facts_correct_per_caption']:>9.2f} "
                     f"{s['facts_wrong_per_caption']:>6.2f}  {cause['prior']} / "
                     f"{cause['misrecognition']}")
    for key in ("verify", "answers"):
        s = result.get(key)
        if s:
            lines.append(f"{key}: dropped {s['dropped']} of {s['items']} ({s['wrong']} wrong): "
                         f"precision {_num(s['precision'])}, recall {_num(s['recall'])}")
    per = result["per_image"]
    lines.append(f"per image: {per['requests']} requests, {per['prompt_tokens']} prompt "
                 f"tokens, {per['output_tokens']} output tokens")
    return lines


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"
