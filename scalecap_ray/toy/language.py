"""The toy world's language: the sentences a perfect captioner of the world writes for
every stage of the pipeline, and a reader that gets the facts back out of any text.

Writing (what the toy model is trained to say):
- caption (prompt P1): one sentence per object, in caption order, naming the object and
  where it is: "A cup is on the table." / "A tree is on the left.";
- object details: "The cup is small and red."; position details: "The cup is at the top,
  on the table."; about an object that is not there: "There is no cup.";
- instructions (P2): one "Describe more details about the X." line per object a sentence
  names;
- summaries (P3, P4) and the final caption (P5): "A small red cup is at the top, on the
  table.".

Reading (`read_claims`) is lenient: any sentence, any order of words, so the metrics work
on whatever a model writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from scalecap_ray.prompts import INSTRUCTION_STEM
from scalecap_ray.text.sentences import split_sentences
from scalecap_ray.toy.world import (
    CAPTION_ORDER,
    COLOURS,
    KINDS,
    POSITION_PHRASES,
    POSITIONS,
    SIZES,
    Scene,
    ToyObject,
)

_PHRASE_TO_POSITION = {phrase: pos for pos, phrase in POSITION_PHRASES.items()}


@dataclass(frozen=True)
class Claim:
    """What one sentence says about its subject (None: not said)."""

    kind: str
    size: str | None = None
    colour: str | None = None
    position: str | None = None
    on: str | None = None
    beside: str | None = None
    absent: bool = False

    def facts(self) -> dict[str, str]:
        """The attribute facts stated: colour, size, position, relation."""
        out = {k: v for k, v in (("colour", self.colour), ("size", self.size),
                                 ("position", self.position)) if v is not None}
        if self.on is not None:
            out["on"] = self.on
        if self.beside is not None:
            out["beside"] = self.beside
        return out


def claim_of(scene: Scene, obj: ToyObject) -> Claim:
    """Everything true of `obj`."""
    on, beside = scene.on(obj), scene.beside(obj)
    return Claim(obj.kind, obj.size, obj.colour, obj.position,
                 on.kind if on else None, beside.kind if beside else None)


# -- writing -------------------------------------------------------------------------------

def _where(claim: Claim) -> str:
    # "beside" is read and scored when a model writes it, but not written: the vision
    # tower of a model this small never learned to see the neighbour's kind.
    parts = [POSITION_PHRASES[claim.position]] if claim.position else []
    if claim.on:
        parts.append(f"on the {claim.on}")
    return ", ".join(parts)


def caption_sentence(claim: Claim) -> str:
    """The initial caption's sentence: the object and where it is (what it sits on, else
    its position).  Colour and size are left to the detail questions."""
    where = f"on the {claim.on}" if claim.on else POSITION_PHRASES[claim.position]
    return f"A {claim.kind} is {where}."


def caption(scene: Scene, unseen: Iterable[Claim] = ()) -> str:
    """The scene's caption; `unseen`: claims about objects that are not drawn, which the
    caption names too, each in its place in caption order."""
    claims = [claim_of(scene, o) for o in scene.objects] + list(unseen)
    claims.sort(key=lambda c: CAPTION_ORDER[c.kind])
    return " ".join(caption_sentence(c) for c in claims)


def object_answer(claim: Claim) -> str:
    if claim.absent:
        return f"There is no {claim.kind}."
    return f"The {claim.kind} is {claim.size} and {claim.colour}."


def position_answer(claim: Claim) -> str:
    if claim.absent:
        return f"There is no {claim.kind}."
    return f"The {claim.kind} is {_where(claim)}."


def final_sentence(claim: Claim) -> str:
    adjectives = " ".join(a for a in (claim.size, claim.colour) if a)
    noun = f"{adjectives} {claim.kind}" if adjectives else claim.kind
    where = _where(claim)
    return f"A {noun} is {where}." if where else f"There is a {noun}."


def instruction(kind: str) -> str:
    return f"{INSTRUCTION_STEM} the {kind}."


def instructions(text: str) -> str:
    """P2's reply for one golden sentence (or several): a line per object named, in order
    of mention, each once; an empty reply when no object is named."""
    kinds = list(dict.fromkeys(mentions(text)))
    return "\n".join(instruction(k) for k in kinds)


# -- reading -------------------------------------------------------------------------------

_KIND = "|".join(KINDS)
_KIND_WORD = re.compile(rf"\b({_KIND})s?\b", re.IGNORECASE)
_COLOUR_WORD = re.compile(rf"\b({'|'.join(COLOURS)})\b", re.IGNORECASE)
_SIZE_WORD = re.compile(rf"\b({'|'.join(SIZES)})\b", re.IGNORECASE)
_POSITION = re.compile(
    r"\b(?:at|on|in) the (top left|top right|bottom left|bottom right|top|bottom|left|right|"
    r"centre|center)\b(?! of)", re.IGNORECASE)
_ON = re.compile(rf"\bon (?:the|a) ({_KIND})\b", re.IGNORECASE)
_BESIDE = re.compile(rf"\b(?:beside|next to) (?:the|a) ({_KIND})\b", re.IGNORECASE)
_ABSENT = re.compile(rf"\b(?:there is|there's) no ({_KIND})\b", re.IGNORECASE)


def mentions(text: str) -> list[str]:
    """Every object kind named in `text`, in order, repeats included (plurals folded)."""
    return [m.group(1).lower() for m in _KIND_WORD.finditer(text)]


def read_claim(sentence: str) -> Claim | None:
    """The claim of one sentence about its subject (the first object it names); None when
    it names none."""
    absent = _ABSENT.search(sentence)
    if absent:
        return Claim(absent.group(1).lower(), absent=True)
    names = mentions(sentence)
    if not names:
        return None
    subject = _KIND_WORD.search(sentence)
    claim = Claim(names[0])
    colour, size = _COLOUR_WORD.search(sentence), _SIZE_WORD.search(sentence)
    position = _POSITION.search(sentence)
    on = next((m for m in _ON.finditer(sentence) if m.start() > subject.start()), None)
    beside = _BESIDE.search(sentence)
    pos = None
    if position:
        word = position.group(1).lower()
        pos = "centre" if word == "center" else word
    return replace(claim, colour=colour.group(1).lower() if colour else None,
                   size=size.group(1).lower() if size else None, position=pos,
                   on=on.group(1).lower() if on else None,
                   beside=beside.group(1).lower() if beside else None)


def read_claims(text: str) -> list[Claim]:
    """The claims of every sentence of `text` that names an object."""
    out = []
    for s in split_sentences(text):
        claim = read_claim(s.text)
        if claim is not None:
            out.append(claim)
    return out


def merge_claims(claims: list[Claim]) -> dict[str, Claim]:
    """Claims about the same object merged (later ones fill what earlier ones left
    unsaid; an absence claim wins), by kind, in order of first mention."""
    merged: dict[str, Claim] = {}
    for c in claims:
        old = merged.get(c.kind)
        if old is None or c.absent:
            merged[c.kind] = c
        elif not old.absent:
            merged[c.kind] = replace(old, **{k: v for k, v in vars(c).items()
                                             if v is not None and getattr(old, k) is None})
    return merged


def position_of_phrase(phrase: str) -> str:
    return _PHRASE_TO_POSITION[phrase]


assert set(POSITION_PHRASES) == set(POSITIONS)
