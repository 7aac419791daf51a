"""The report page from rows (no Ray, no engine): cards, marks, errors, escaping."""

import html.parser

import pytest

from scalecap_ray.report.html import card


class Marks(html.parser.HTMLParser):
    """Collects the classes of elements by tag."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, str, dict]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.found.append((tag, a.get("class", ""), a))


def parse(page: str) -> Marks:
    m = Marks()
    m.feed(page)
    return m


ROW = {"id": "r1", "image": "images/boat.png", "error": None, "error_stage": None,
       "sentences": ["A boat floats.", "A <dragon> flies."], "sentence_scores": [0.6, 0.01],
       "golden_sentences": ["A boat floats."], "object_questions": ["Describe the boat."],
       "position_questions": ["Describe the position of the boat."],
       "answers": ["It is white.", ""], "answer_kept": [True, False],
       "final_caption": "A white boat floats."}


def test_card_marks_sentences_and_answers_and_escapes():
    m = parse(card(ROW, "data:image/jpeg;base64,AAAA"))
    marks = [a["data-mark"] for _, _, a in m.found if "data-mark" in a]
    assert marks == ["kept", "dropped"]
    assert [c for t, c, _ in m.found if t == "li"] == ["used", "filtered"]
    page = card(ROW, None)
    assert "&lt;dragon&gt;" in page and "<dragon>" not in page
    assert 'class="noimg"' in page and "0.60" in page


def test_failed_rows_show_their_error():
    row = {"id": "r2", "image": "x.png", "error": "x.png: no such file",
           "error_stage": "load"}
    m = parse(card(row, None))
    (section,) = [a for t, _, a in m.found if t == "section"]
    assert section["data-status"] == "error" and "error" in section["class"]
    assert "failed at load: x.png: no such file" in card(row, None)


def test_report_of_a_folder_that_is_no_output(tmp_path):
    from scalecap_ray.report import write_report

    with pytest.raises(ValueError, match="not a scalecap-ray output"):
        write_report(str(tmp_path))
