"""Sentence splitting that keeps the text verbatim.

The rule is DataFlow-MM's (split after . ! ? and their full-width CJK forms when white
space follows), with three fixes: CJK terminators end a sentence without a following
space (Chinese text has none), line breaks end a sentence (the official ScaleCap code
splits on them too), and a period after a common abbreviation or a single initial does
not ("Dr. Smith", "J. R. R. Tolkien", "e.g. a cup").  Sentences are returned as character
spans of the input, so token offsets can be mapped onto them.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

_CJK_END = "。！？"
_LATIN_END = ".!?"
# A candidate break: Latin terminator(s) (plus closing quotes/brackets) then white space,
# a CJK terminator (plus closers) then anything, or a line break.
_BREAK = re.compile(
    rf"[{re.escape(_LATIN_END)}]+[\"'”’)\]]*(?=\s)|[{_CJK_END}]+[\"'”’」』)\]）]*|\n"
)
_ABBREVIATIONS = frozenset((
    'mr', 'mrs', 'ms', 'dr', 'prof', 'st', 'sr', 'jr', 'vs', 'etc', 'e.g', 'i.e', 'no',
    'fig', 'approx', 'dept', 'est', 'inc', 'ltd', 'co', 'mt', 'ft', 'jan', 'feb', 'mar',
    'apr', 'jun', 'jul', 'aug', 'sep', 'sept', 'oct', 'nov', 'dec',
))
_WORD_BEFORE = re.compile(r"([\w.]+)\.$")


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the period at `dot` ends an abbreviation or an initial, not a sentence."""
    m = _WORD_BEFORE.search(text[max(0, dot - 12): dot + 1])
    if not m:
        return False
    word = m.group(1).lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def split_sentences(text: str) -> list[Sentence]:
    """Split `text` into sentences; each is a stripped span of the original string."""
    if not text:
        return []
    cuts = [0]
    for m in _BREAK.finditer(text):
        token = m.group()
        lone_period = token[0] == "." and len(token.rstrip("\"'”’)]")) == 1
        if lone_period and _is_abbreviation(text, m.start()):
            continue
        cuts.append(m.end())
    cuts.append(len(text))
    out = []
    for a, b in itertools.pairwise(cuts):
        chunk = text[a:b]
        stripped = chunk.strip()
        if stripped:
            start = a + (len(chunk) - len(chunk.lstrip()))
            out.append(Sentence(stripped, start, start + len(stripped)))
    return out
