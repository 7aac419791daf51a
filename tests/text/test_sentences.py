import pytest

from scalecap_ray.text.sentences import split_sentences


def texts(s: str) -> list[str]:
    return [x.text for x in split_sentences(s)]


@pytest.mark.parametrize(("text", "expected"), [
    ("A man. A dog!  A cat?", ["A man.", "A dog!", "A cat?"]),
    ("Dr. Smith met J. R. R. Tolkien. Then he left.", ["Dr. Smith met J. R. R. Tolkien.",
                                                      "Then he left."]),
    ("It costs 3.5 dollars, e.g. a cup. Next.", ["It costs 3.5 dollars, e.g. a cup.", "Next."]),
    ("我是学生。你好！他呢？ok", ["我是学生。", "你好！", "他呢？", "ok"]),
    ("图中有一只猫。 The cat is black.", ["图中有一只猫。", "The cat is black."]),
    ("Line one\nLine two. Three", ["Line one", "Line two.", "Three"]),
    ('He said "Stop." Then went.', ['He said "Stop."', "Then went."]),
    ("Wait... what? Yes.", ["Wait...", "what?", "Yes."]),
    ("No trailing period", ["No trailing period"]),
    ("", []),
    ("  \n ", []),
])
def test_splits(text, expected):
    assert texts(text) == expected


def test_spans_are_verbatim_slices():
    text = "  The cup.\n\n  A dog sits (left).  Done! "
    for s in split_sentences(text):
        assert text[s.start:s.end] == s.text
        assert s.text == s.text.strip()
