import math

import pytest

from scalecap_ray.engine.types import TokenLogprob
from scalecap_ray.text.scoring import (
    YES_NO_TOKENS,
    content_spans,
    contrastive_scores,
    keep,
    yes_probability,
)
from scalecap_ray.text.sentences import Sentence, split_sentences


def tokens_for(text: str, pieces: list[str], logprobs: list[float]) -> list[TokenLogprob]:
    out, pos = [], 0
    for piece, lp in zip(pieces, logprobs, strict=True):
        assert text.startswith(piece, pos)
        out.append(TokenLogprob(pos, pos + len(piece), lp))
        pos += len(piece)
    assert pos == len(text)
    return out


def test_content_words_skip_function_words_and_punctuation():
    text = "The red cup is on the table, 3 of them."
    assert [text[a:b] for a, b in content_spans(text)] == ["red", "cup", "table", "3"]


def test_sentence_score_is_max_gain_over_content_tokens():
    text = "The cup is red. A dog runs."
    pieces = ["The", " cup", " is", " red", ".", " A", " dog", " runs", "."]
    with_image = [math.log(p) for p in [0.5, 0.9, 0.9, 0.6, 1.0, 0.5, 0.3, 0.4, 1.0]]
    without = [math.log(p) for p in [0.1, 0.2, 0.1, 0.5, 1.0, 0.1, 0.35, 0.3, 0.1]]
    scores = contrastive_scores(text, split_sentences(text), tokens_for(text, pieces, with_image),
                                tokens_for(text, pieces, without))
    # "The" and "is" gain most in the first sentence but are function words: "cup" counts.
    assert scores[0] == pytest.approx(0.7)
    # Second sentence: "dog" loses 0.05, "runs" gains 0.1 ("A" and "." do not count).
    assert scores[1] == pytest.approx(0.1)
    assert [keep(s, 0.15) for s in scores] == [True, False]


def test_token_spanning_two_words_counts_for_both_sentences_it_touches():
    text = "Hi.Yo cat."
    pieces = ["Hi", ".Yo", " cat", "."]
    gain = tokens_for(text, pieces, [math.log(0.9)] * 4)
    base = tokens_for(text, pieces, [math.log(0.5)] * 4)
    sentences = [Sentence("Hi.Yo", 0, 5), Sentence("cat.", 6, 10)]
    assert contrastive_scores(text, sentences, gain, base) == [pytest.approx(0.4)] * 2


def test_sentence_without_content_gets_no_score():
    text = "It is. The cat."
    pieces = ["It", " is", ".", " The", " cat", "."]
    lp = tokens_for(text, pieces, [math.log(0.5)] * 6)
    assert contrastive_scores(text, split_sentences(text), lp, lp)[0] is None
    assert not keep(None, 0.0)


def test_mismatched_passes_are_rejected():
    text = "A cat."
    a = tokens_for(text, ["A", " cat", "."], [0.0] * 3)
    b = tokens_for(text, ["A", " ca", "t", "."], [0.0] * 4)
    with pytest.raises(ValueError, match="tokenized the caption differently"):
        contrastive_scores(text, split_sentences(text), a, b)


def test_yes_probability_sums_variants_and_ignores_lookalikes():
    lp = {"yes": math.log(0.2), " Yes": math.log(0.2), "no": math.log(0.1), "NO": math.log(0.1)}
    assert yes_probability(lp) == pytest.approx(2 / 3)
    assert yes_probability({"eyes": 0.0, "no": math.log(0.3)}) == 0.0  # "eyes" is no yes
    assert yes_probability({}) is None
    assert {"yes", "Yes", " yes", "no", "No", " no"} <= set(YES_NO_TOKENS)
