"""Turning the LLM's replies to prompt P2 into instructions.

Follows the official ScaleCap parsing (keep what precedes the reply's last period, keep
lines with "Describe more details about", cut each at its first period) with DataFlow-MM's
improvements (numbering stripped, order-preserving de-duplication, a cap) and a few more:
markdown and bullets are stripped, the stem is matched case-insensitively anywhere in the
line, and an instruction must name an object.
"""

from __future__ import annotations

import re

from scalecap_ray.prompts import INSTRUCTION_STEM, POSITION_STEM

_STEM = re.compile(re.escape(INSTRUCTION_STEM), re.IGNORECASE)
_MARKUP = re.compile(r"[*_`#>\"“”]+")
_SPACES = re.compile(r"\s+")


def _clean_object(text: str) -> str:
    text = _MARKUP.sub("", text)
    text = text.split(".", 1)[0]
    return _SPACES.sub(" ", text).strip(" :;,-")


def parse_instructions(reply: str) -> list[str]:
    """All well-formed "Describe more details about X." instructions in one reply, in order
    (duplicates included; `merge_instructions` removes them)."""
    last_period = reply.rfind(".")
    if last_period >= 0:
        reply = reply[: last_period + 1]
    found = []
    for line in reply.splitlines():
        m = _STEM.search(line)
        if not m:
            continue
        obj = _clean_object(line[m.end():])
        if obj:
            found.append(f"{INSTRUCTION_STEM} {obj}.")
    return found


def merge_instructions(per_sentence: list[list[str]], max_questions: int
                       ) -> tuple[list[str], list[int]]:
    """De-duplicate (case- and space-insensitively, first one wins) across the replies of
    one image, cap at `max_questions`; also return, for each instruction kept, the index
    of the golden sentence that produced it."""
    seen: set[str] = set()
    out: list[str] = []
    sources: list[int] = []
    for idx, instructions in enumerate(per_sentence):
        for q in instructions:
            key = q.lower()
            if key not in seen:
                seen.add(key)
                out.append(q)
                sources.append(idx)
    return out[:max_questions], sources[:max_questions]


def instruction_object(question: str) -> str:
    """The object an instruction asks about: "Describe more details about the cup." -> "the cup"."""
    m = _STEM.match(question)
    rest = question[m.end():] if m else question
    return rest.strip().removesuffix(".").strip()


def position_question(question: str) -> str:
    """The derived position instruction (no model): "... about the position of the cup."."""
    return f"{POSITION_STEM} {instruction_object(question)}."
