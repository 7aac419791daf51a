from scalecap_ray.text.instructions import (
    instruction_object,
    merge_instructions,
    parse_instructions,
    position_question,
)

MESSY = """Instructions:
1. Describe more details about the man.
- **Describe more details about the suit**.
describe more details about the red tie. It is nice.
Describe more details about.
   * Describe more details about the man.
2) `Describe more details about the "bed"`.
Describe more details about the lamp"""


def test_parses_numbering_bullets_markdown_and_case():
    assert parse_instructions(MESSY) == [
        "Describe more details about the man.",
        "Describe more details about the suit.",
        "Describe more details about the red tie.",
        "Describe more details about the man.",
        "Describe more details about the bed.",
    ]  # the object-less line is dropped; the unfinished last line is cut with the tail


def test_no_instructions():
    assert parse_instructions("There is nothing to ask about here.") == []
    assert parse_instructions("") == []


def test_merge_dedupes_in_order_caps_and_tracks_sources():
    per_sentence = [["Describe more details about the man.",
                     "Describe more details about the suit."],
                    ["Describe more details about the Man.",
                     "Describe more details about the dog.",
                     "Describe more details about the cat."]]
    questions, sources = merge_instructions(per_sentence, max_questions=3)
    assert questions == ["Describe more details about the man.",
                         "Describe more details about the suit.",
                         "Describe more details about the dog."]
    assert sources == [0, 0, 1]


def test_position_questions_and_objects():
    q = "Describe more details about the red cup."
    assert instruction_object(q) == "the red cup"
    assert position_question(q) == "Describe more details about the position of the red cup."
