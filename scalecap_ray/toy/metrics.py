"""Caption quality against the toy world's truth.

Object mentions are the world's kind words (plurals folded).  Per caption field:
- CHAIR_i: hallucinated objects / objects mentioned, and CHAIR_s: captions with at least
  one hallucinated object / captions (Rohrbach et al., "Object Hallucination in Image
  Captioning", EMNLP 2018), counting each object once per caption;
- object recall: true objects mentioned / true objects (a caption that names nothing
  scores a perfect CHAIR);
- attribute facts (colour, size, position, on, beside), correct and wrong, per caption;
- hallucinations split by cause: `prior` (the partner of an anchor that is in the image,
  the planted co-occurrence) and `misrecognition` (any other absent kind).
For the checks: precision and recall of dropping a hallucinated sentence (verify) or a
wrong answer (second filter), the truth of each being known.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from scalecap_ray.toy.language import Claim, mentions, read_claim, read_claims
from scalecap_ray.toy.world import PRIOR_PAIRS, Scene

FACT_KINDS = ("colour", "size", "position", "on", "beside")


def hallucination_cause(scene: Scene, kind: str) -> str:
    anchors = [a for a, partner in PRIOR_PAIRS.items() if partner == kind]
    return "prior" if any(a in scene.kinds for a in anchors) else "misrecognition"


def fact_is_true(scene: Scene, kind: str, fact: str, value: str) -> bool:
    obj = scene.find(kind)
    if obj is None:
        return False
    if fact == "on":
        support = scene.on(obj)
        return support is not None and support.kind == value
    if fact == "beside":
        return any(o.kind == value for o in (scene.at(obj.row, obj.col - 1),
                                             scene.at(obj.row, obj.col + 1)) if o)
    return getattr(obj, fact) == value


def claim_is_true(scene: Scene, claim: Claim) -> bool:
    """An answer-like claim: right about presence and about every fact it states."""
    if claim.absent:
        return claim.kind not in scene.kinds
    return claim.kind in scene.kinds and all(
        fact_is_true(scene, claim.kind, f, v) for f, v in claim.facts().items())


@dataclass
class CaptionTally:
    """Counts over the captions of one field."""

    captions: int = 0
    hallucinated_captions: int = 0
    mentioned: int = 0
    hallucinated: int = 0
    by_cause: Counter = field(default_factory=Counter)
    true_objects: int = 0
    recalled: int = 0
    facts_correct: Counter = field(default_factory=Counter)
    facts_wrong: Counter = field(default_factory=Counter)

    def add(self, text: str, scene: Scene) -> None:
        named = set(mentions(text))
        wrong = named - scene.kinds
        self.captions += 1
        self.hallucinated_captions += bool(wrong)
        self.mentioned += len(named)
        self.hallucinated += len(wrong)
        self.by_cause.update(hallucination_cause(scene, k) for k in wrong)
        self.true_objects += len(scene.kinds)
        self.recalled += len(named & scene.kinds)
        facts = {(c.kind, f, v) for c in read_claims(text) if not c.absent
                 for f, v in c.facts().items()}
        for kind, fact, value in facts:
            counter = self.facts_correct if fact_is_true(scene, kind, fact, value) \
                else self.facts_wrong
            counter[fact] += 1

    def summary(self) -> dict:
        n = max(self.captions, 1)
        return {
            "captions": self.captions,
            "chair_i": _ratio(self.hallucinated, self.mentioned),
            "chair_s": _ratio(self.hallucinated_captions, self.captions),
            "recall": _ratio(self.recalled, self.true_objects),
            "objects_mentioned": self.mentioned,
            "objects_hallucinated": self.hallucinated,
            "hallucinated_by_cause": {c: self.by_cause.get(c, 0)
                                      for c in ("prior", "misrecognition")},
            "facts_correct_per_caption": round(sum(self.facts_correct.values()) / n, 4),
            "facts_wrong_per_caption": round(sum(self.facts_wrong.values()) / n, 4),
            "facts_correct": {f: self.facts_correct.get(f, 0) for f in FACT_KINDS},
            "facts_wrong": {f: self.facts_wrong.get(f, 0) for f in FACT_KINDS},
        }


@dataclass
class DropTally:
    """How well a check drops the items that are wrong (and keeps the others)."""

    items: int = 0
    wrong: int = 0
    dropped: int = 0
    dropped_wrong: int = 0

    def add(self, is_wrong: bool, dropped: bool) -> None:
        self.items += 1
        self.wrong += is_wrong
        self.dropped += dropped
        self.dropped_wrong += is_wrong and dropped

    def summary(self) -> dict:
        return {"items": self.items, "wrong": self.wrong, "dropped": self.dropped,
                "precision": _ratio(self.dropped_wrong, self.dropped),
                "recall": _ratio(self.dropped_wrong, self.wrong)}


def sentence_is_hallucinated(scene: Scene, sentence: str) -> bool:
    return bool(set(mentions(sentence)) - scene.kinds)


def sentence_group(scene: Scene, sentence: str) -> str | None:
    """What a caption sentence is, for studying verify's scores: `prior` or
    `misrecognition` (it names an absent object, by cause), `partner` (true, and the usual
    partner of an anchor in the scene: the text alone expects it), `true` (any other true
    sentence); None when it names no object."""
    kinds = mentions(sentence)
    if not kinds:
        return None
    absent = [k for k in kinds if k not in scene.kinds]
    if absent:
        return hallucination_cause(scene, absent[0])
    return "partner" if hallucination_cause(scene, kinds[0]) == "prior" else "true"


def answer_is_wrong(scene: Scene, answer: str) -> bool:
    claim = read_claim(answer)
    return claim is not None and not claim_is_true(scene, claim)


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None
