"""Scores that decide what to keep.

Contrastive (the paper's dual-modality debiasing): for each token of a caption,
dp = p(token | image, prompt, prefix) - p(token | prompt, prefix), probabilities from one
prefill with the image and one without.  A sentence's score is the largest dp over its
content tokens (the paper filters by part of speech: nouns, verbs, adjectives, adverbs,
numerals, proper nouns; here a word is content unless it is a function word or has no
letters or digits, which needs no tagger model).  Tokens are mapped to sentences and words
by character offsets, never by re-tokenising fragments.

Yes/no (DataFlow-MM's grounding question): P(yes) / (P(yes) + P(no)) from the first
generated token's log-probabilities, summing the case and leading-space variants of each
word, so "eyes" or "not yes" in a reply can never count as a yes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from scalecap_ray.engine.types import TokenLogprob
from scalecap_ray.text.sentences import Sentence

# Determiners, pronouns, prepositions, conjunctions, auxiliaries and particles.
FUNCTION_WORDS = frozenset((
    'a', 'an', 'the', 'this', 'that', 'these', 'those', 'some', 'any', 'each', 'every',
    'either', 'neither', 'no', 'both', 'all', 'few', 'many', 'much', 'more', 'most',
    'other', 'another', 'such', 'what', 'which', 'whose', 'who', 'whom', 'whoever', 'i',
    'me', 'my', 'mine', 'we', 'us', 'our', 'ours', 'you', 'your', 'yours', 'he', 'him',
    'his', 'she', 'her', 'hers', 'it', 'its', 'they', 'them', 'their', 'theirs',
    'ones', 'myself', 'yourself', 'himself', 'herself', 'itself', 'ourselves', 'themselves',
    'of', 'in', 'on', 'at', 'by', 'for', 'with', 'about', 'against', 'between', 'into',
    'through', 'during', 'before', 'after', 'above', 'below', 'to', 'from', 'up', 'down',
    'out', 'off', 'over', 'under', 'again', 'further', 'then', 'once', 'here', 'there',
    'when', 'where', 'why', 'how', 'near', 'beside', 'behind', 'onto', 'upon', 'within',
    'without', 'along', 'across', 'around', 'among', 'toward', 'towards', 'via', 'per',
    'than', 'as', 'like', 'and', 'or', 'but', 'nor', 'so', 'yet', 'if', 'because', 'while',
    'although', 'though', 'unless', 'since', 'whether', 'is', 'am', 'are', 'was', 'were',
    'be', 'been', 'being', 'have', 'has', 'had', 'having', 'do', 'does', 'did', 'doing',
    'will', 'would', 'shall', 'should', 'can', 'could', 'may', 'might', 'must', 'ought',
    'not', 'very', 'too', 'just', 'also', 'only', 'even', 'still', 's', 't', "'s", "n't",
))

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)


def content_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the content words of `text`."""
    return [(m.start(), m.end()) for m in _WORD.finditer(text)
            if m.group().lower() not in FUNCTION_WORDS]


def _overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def token_gains(with_image: Sequence[TokenLogprob], without_image: Sequence[TokenLogprob]
                ) -> list[float]:
    """dp per token; both sequences must cover the same text with the same tokens."""
    if [(t.start, t.end) for t in with_image] != [(t.start, t.end) for t in without_image]:
        raise ValueError("the two scoring passes tokenized the caption differently")
    return [math.exp(a.logprob) - math.exp(b.logprob)
            for a, b in zip(with_image, without_image, strict=True)]


def sentence_scores(text: str, sentences: Sequence[Sentence], tokens: Sequence[TokenLogprob],
                    gains: Sequence[float]) -> list[float | None]:
    """Per sentence, the largest gain over the content tokens inside it (None when the
    sentence has no content token to judge)."""
    words = content_spans(text)
    content = [any(_overlaps(t.start, t.end, w0, w1) for w0, w1 in words) for t in tokens]
    scores: list[float | None] = []
    for s in sentences:
        inside = [g for t, g, c in zip(tokens, gains, content, strict=True)
                  if c and _overlaps(t.start, t.end, s.start, s.end)]
        scores.append(max(inside) if inside else None)
    return scores


def contrastive_scores(text: str, sentences: Sequence[Sentence],
                       with_image: Sequence[TokenLogprob],
                       without_image: Sequence[TokenLogprob]) -> list[float | None]:
    """Sentence scores of `text` from its two scoring passes (with and without the image)."""
    return sentence_scores(text, sentences, with_image, token_gains(with_image, without_image))


def yes_no_variants(word: str) -> tuple[str, ...]:
    forms = {word.lower(), word.capitalize(), word.upper()}
    return tuple(sorted(forms | {" " + f for f in forms}))


YES_NO_TOKENS = yes_no_variants("yes") + yes_no_variants("no")


def yes_probability(first_token_logprobs: Mapping[str, float]) -> float | None:
    """P(yes) / (P(yes) + P(no)) from first-token log-probabilities of the variants; None
    when the model gave neither any probability."""
    p_yes = sum(math.exp(first_token_logprobs[v]) for v in yes_no_variants("yes")
                if v in first_token_logprobs)
    p_no = sum(math.exp(first_token_logprobs[v]) for v in yes_no_variants("no")
               if v in first_token_logprobs)
    if p_yes + p_no <= 0.0:
        return None
    return p_yes / (p_yes + p_no)


def keep(score: float | None, threshold: float) -> bool:
    return score is not None and score > threshold
