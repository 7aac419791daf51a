# ruff: noqa: E501  (the prompts are published text, kept verbatim)
"""Default prompt templates.

P1-P5 are the prompts published in the ScaleCap paper's appendix A (Xing et al.,
"ScaleCap: Inference-Time Scalable Image Captioning via Dual-Modality Debiasing",
arXiv:2506.19848), kept verbatim, typos included, because the method was tuned on them.
The two grounding templates are the yes/no questions of DataFlow-MM's ScaleCap pipeline.
Every template is overridable in the config; `{}` marks where the text goes.
"""

from __future__ import annotations

# P1: the VLM's initial caption.
CAPTION_PROMPT = (
    "Describe the fine-grained content of the image, including scenes, objects, "
    "relationships, instance location, and any text present."
)

# P2: the LLM turns one golden sentence into "Describe more details about ..." lines.
QUESTIONS_PROMPT = """Your task is to convert each Object mentioned in a given sentence into a corresponding instruction, and all the resulting instructions are output as "Describe more details about the [Object]". Ensure your instructions do not cover the raw question, options, or thought process of answering the instructions. You should ignore the Objects that appear in some inferences, such as the sentences that begins with 'it might be' or 'there are probably'.
Sentence: 
The image depicts a man in a suit and tie jumping in the air above a bed in a bedroom
Instructions:
Describe more details about the man.
Describe more details about the suit.
Describe more details about the tie.
Describe more details about the bed.
Describe more details about the bedroom.

Sentence:
The train appears to be the main subject of the image, showcasing its sleek design and modern appearance
Instructions:
Describe more details about the train.

Sentence:
The table has a few other items on it, including a camera, a jar of jam, and a spoon, suggesting that there might be some people ready to eat
Instructions:
Describe more details about the table.
Describe more details about the camera.
Describe more details about the jam.
Describe more details about the spoon.

Sentence:
The text "You see the world as you are!" is a playful and thought-provoking statement, encouraging viewers to appreciate their unique qualities and perspectives
Instructions:
Describe more details about the text.

Sentence:
1. **Preheat the Oven**: Preheat your oven to 350°F (175°C).
Instructions:
Describe more details about the oven.
Describe more details about the preheat temperature.

Sentence:
{}
Instructions:
"""  # noqa: W291 (the paper's prompt has a trailing space after the first "Sentence:")

# P3: the LLM summarises object details.
OBJECT_SUMMARY_PROMPT = """Descriptions:
{}

Collect all details about each object from the descriptions, including detailed appearance, structure, material, and special marks or logos. Do not include any analysis or your opinions."""

# P4: the LLM summarises positions ("decriptions" is the paper's spelling).
POSITION_SUMMARY_PROMPT = """Descriptions:
{}

Extract and abstract only the position information about each object from the decriptions. Do not include any analysis or your opinions."""

# P5: the LLM writes the final caption from golden sentences and the two summaries.
INTEGRATE_PROMPT = """Basic Context:
{}

Object Information:
{}

Position Information:
{}

Following the logic of the above Basic Context, organize all details provided in Object Information and Position Information to give a very comprehensive description about the image. Do not include any analysis or your opinions."""

# DataFlow-MM's grounding questions (sentence check, answer check).
SENTENCE_GROUNDING_PROMPT = (
    "Given the image, is the description '{}' directly supported by visual evidence? "
    "Answer strictly yes or no."
)
ANSWER_GROUNDING_PROMPT = (
    "Given the image, is the statement '{}' grounded in the image and not generic? "
    "Answer strictly yes or no."
)

# The instruction stem of P2 and the derived position instruction.
INSTRUCTION_STEM = "Describe more details about"
POSITION_STEM = "Describe more details about the position of"


def fill(template: str, *values: str) -> str:
    """Put `values` into the `{}` slots of `template`, in order.  Unlike str.format, other
    braces in the template (and braces in the values) are left alone."""
    parts = template.split("{}")
    if len(parts) != len(values) + 1:
        raise ValueError(f"template has {len(parts) - 1} '{{}}' slot(s), got {len(values)} value(s)")
    out = [parts[0]]
    for value, part in zip(values, parts[1:], strict=True):
        out += [value, part]
    return "".join(out)
