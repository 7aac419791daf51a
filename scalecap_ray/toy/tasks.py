"""Training examples for the toy model: every request the pipeline makes, with the reply
a perfect captioner of the world gives, built from the real prompts of
`scalecap_ray.prompts` and the pipeline's own request builders.

The co-occurrences of the world (a cup on a table) are what the model hallucinates, and it
learns them the way real VLMs do.  Captions *without* an image (text only, as a language
model's pre-training text) come from a world where most anchors carry their partner
(`PRIOR_WORLD`): the language prior.  Captions *with* an image describe what is drawn,
except that, like real alt-text written by someone who knows what is usually there, they
name an anchor's usual partner now and then when the picture does not show it
(`UNSEEN_PARTNER`).  So the model learns to look for the partner, but also that it may
name one it cannot see: on a table without a cup its caption often says "A cup is on the
table.", with less gain from the image than a cup it sees.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from scalecap_ray import prompts
from scalecap_ray.prompts import fill
from scalecap_ray.stages.integrate import detail_blocks
from scalecap_ray.text.instructions import merge_instructions, parse_instructions, position_question
from scalecap_ray.toy import language as lang
from scalecap_ray.toy.language import Claim
from scalecap_ray.toy.world import (
    COLOURS,
    KINDS,
    POSITIONS,
    PRIOR_PAIRS,
    SIZES,
    Scene,
    WorldParams,
    colour,
    sample_scene,
)

# The training images' world puts a partner on 90% of its anchors, the text world on 95%:
# both carry the co-occurrence.  Held-out scenes (`toy-scenes`) put one on half of them.
IMAGE_WORLD = WorldParams(pair_rate=0.9)
PRIOR_WORLD = WorldParams(pair_rate=0.85)
# How often an image caption names the partner of an anchor whose partner is not drawn.
UNSEEN_PARTNER = 0.6


@dataclass(frozen=True)
class Example:
    task: str
    prompt: str
    target: str
    scene: Scene | None = None  # the image, when the request carries one
    image_seed: int = 0


# -- what the perfect pipeline LLM writes ----------------------------------------------------

def summary(block: str) -> str:
    """P3/P4's reply: the detail answers of the block, in order, each once."""
    answers = []
    for line in block.splitlines():
        if line.startswith(("Details about ", "Position about ")) and ": " in line:
            answers.append(line.split(": ", 1)[1].strip())
    return " ".join(dict.fromkeys(a for a in answers if a))


def integrate(context: str, object_info: str, position_info: str) -> str:
    """P5's reply: each object of the basic context once, in order, with what the two
    informations say about it; an object they say is not there is left out."""
    info = lang.merge_claims(lang.read_claims(object_info) + lang.read_claims(position_info))
    out, seen = [], set()
    for golden in lang.read_claims(context):
        if golden.absent or golden.kind in seen:
            continue
        seen.add(golden.kind)
        more = info.get(golden.kind)
        if more is not None and more.absent:
            continue
        claim = golden
        if more is not None:
            where = (more if more.position or more.on
                     else golden)
            claim = Claim(golden.kind, more.size, more.colour or golden.colour,
                          where.position, where.on)
        out.append(lang.final_sentence(claim))
    return " ".join(out)


# -- sampling what a pipeline state looks like ----------------------------------------------

def _absent_kind(rng: random.Random, scene: Scene) -> str:
    """A kind not in the scene: most often the partner of an anchor that is."""
    partners = [p for a, p in PRIOR_PAIRS.items() if a in scene.kinds and p not in scene.kinds]
    if partners and rng.random() < 0.6:
        return rng.choice(partners)
    return rng.choice([k for k in KINDS if k not in scene.kinds])


def _hallucinated_claim(rng: random.Random, scene: Scene, kind: str) -> Claim:
    """What a captioner that made `kind` up says of it: its usual colour, on its anchor."""
    anchors = [a for a, p in PRIOR_PAIRS.items() if p == kind and a in scene.kinds]
    tint = colour(rng, kind, IMAGE_WORLD)
    if anchors:
        return Claim(kind, colour=tint, on=anchors[0])
    return Claim(kind, colour=tint, position=rng.choice(POSITIONS))


def _wrong(rng: random.Random, claim: Claim, fields: tuple[str, ...]) -> Claim:
    """`claim` with one of `fields` changed to another value."""
    field = rng.choice(fields)
    choices = {"size": SIZES, "colour": COLOURS, "position": POSITIONS}[field]
    value = rng.choice([v for v in choices if v != getattr(claim, field)])
    if field == "position":  # a wrong place: no longer on its supporter either
        return Claim(claim.kind, claim.size, claim.colour, value)
    return Claim(**{**vars(claim), field: value})


def _answers(rng: random.Random, scene: Scene, kinds: list[str], absent: set[str]
             ) -> tuple[list[str], list[str]]:
    objects, positions = [], []
    for kind in kinds:
        obj = scene.find(kind)
        claim = Claim(kind, absent=True) if obj is None else lang.claim_of(scene, obj)
        if obj is None and kind not in absent:  # an answer that hallucinates details
            claim = Claim(kind, rng.choice(SIZES), rng.choice(COLOURS), rng.choice(POSITIONS))
        objects.append(lang.object_answer(claim))
        positions.append(lang.position_answer(claim))
    return objects, positions


def pipeline_state(rng: random.Random, scene: Scene) -> dict:
    """What the stages before integration hand over for `scene`: golden sentences (most
    true ones, now and then a hallucinated one), questions, answers and kept flags."""
    true = [lang.caption_sentence(lang.claim_of(scene, o)) for o in scene.objects]
    golden = [s for s in true if rng.random() > 0.1] or true[:1]
    if rng.random() < 0.3:
        kind = _absent_kind(rng, scene)
        golden.insert(rng.randrange(len(golden) + 1),
                      lang.caption_sentence(_hallucinated_claim(rng, scene, kind)))
    per_sentence = [parse_instructions(lang.instructions(s)) for s in golden]
    questions, sources = merge_instructions(per_sentence, 20)
    kinds = [q.removeprefix(prompts.INSTRUCTION_STEM + " the ").rstrip(".") for q in questions]
    absent = {k for k in kinds if k not in scene.kinds and rng.random() < 0.7}
    objects, positions = _answers(rng, scene, kinds, absent)
    answers = objects + positions
    kept = [rng.random() > 0.05 for _ in answers]
    return {"golden": golden, "questions": questions, "sources": sources,
            "answers": answers, "kept": kept}


# -- one sampler per request the pipeline makes ----------------------------------------------

Sampler = Callable[[random.Random], Example]


def _scene(rng: random.Random, params: WorldParams = IMAGE_WORLD) -> Scene:
    return sample_scene(rng, params)


def caption_image(rng: random.Random) -> Example:
    scene = _scene(rng)
    unseen = [Claim(partner, on=anchor) for anchor, partner in PRIOR_PAIRS.items()
              if anchor in scene.kinds and partner not in scene.kinds
              and rng.random() < UNSEEN_PARTNER]
    return Example("caption", prompts.CAPTION_PROMPT, lang.caption(scene, unseen), scene,
                   rng.randrange(1 << 30))


def caption_text(rng: random.Random) -> Example:
    return Example("caption_text", prompts.CAPTION_PROMPT, lang.caption(_scene(rng, PRIOR_WORLD)))


def questions(rng: random.Random) -> Example:
    scene = _scene(rng)
    sentences = [lang.caption_sentence(lang.claim_of(scene, o)) for o in scene.objects]
    text = " ".join(sentences) if rng.random() < 0.1 else rng.choice(sentences)
    return Example("questions", fill(prompts.QUESTIONS_PROMPT, text), lang.instructions(text))


def _asked(rng: random.Random, scene: Scene) -> Claim:
    """The object a question is about: one of the scene's, or one that is not there."""
    if rng.random() < 0.75:
        return lang.claim_of(scene, rng.choice(scene.objects))
    return Claim(_absent_kind(rng, scene), absent=True)


def object_answer(rng: random.Random) -> Example:
    scene = _scene(rng)
    claim = _asked(rng, scene)
    return Example("object_answer", lang.instruction(claim.kind), lang.object_answer(claim),
                   scene, rng.randrange(1 << 30))


def position_answer(rng: random.Random) -> Example:
    scene = _scene(rng)
    claim = _asked(rng, scene)
    return Example("position_answer", position_question(lang.instruction(claim.kind)),
                   lang.position_answer(claim), scene, rng.randrange(1 << 30))


def answer_text(rng: random.Random) -> Example:
    """A question answered without the image: a guess from the prior."""
    kind = rng.choice(KINDS)
    claim = Claim(kind, rng.choice(SIZES), rng.choice(COLOURS), rng.choice(POSITIONS))
    if rng.random() < 0.5:
        return Example("answer_text", lang.instruction(kind), lang.object_answer(claim))
    return Example("answer_text", position_question(lang.instruction(kind)),
                   lang.position_answer(claim))


def sentence_check(rng: random.Random) -> Example:
    scene = _scene(rng)
    claim = lang.claim_of(scene, rng.choice(scene.objects))
    truth = rng.random() < 0.5
    if not truth:
        if rng.random() < 0.6:
            claim = _hallucinated_claim(rng, scene, _absent_kind(rng, scene))
        else:
            claim = _wrong(rng, Claim(claim.kind, colour=claim.colour, position=claim.position),
                           ("position", "colour"))
    text = lang.caption_sentence(claim)
    return Example("sentence_check", fill(prompts.SENTENCE_GROUNDING_PROMPT, text),
                   "Yes." if truth else "No.", scene, rng.randrange(1 << 30))


def answer_check(rng: random.Random) -> Example:
    scene = _scene(rng)
    claim = lang.claim_of(scene, rng.choice(scene.objects))
    writer = rng.choice((lang.object_answer, lang.position_answer))
    truth = rng.random() < 0.5
    if not truth:
        fields = ("size", "colour") if writer is lang.object_answer else ("position",)
        claim = (_wrong(rng, claim, fields) if rng.random() < 0.6
                 else _hallucinated_claim(rng, scene, _absent_kind(rng, scene)))
        if claim.size is None and writer is lang.object_answer:
            claim = Claim(claim.kind, rng.choice(SIZES), rng.choice(COLOURS))
        if claim.position is None and claim.on is None:
            claim = Claim(claim.kind, position=rng.choice(POSITIONS))
    return Example("answer_check", fill(prompts.ANSWER_GROUNDING_PROMPT, writer(claim)),
                   "Yes." if truth else "No.", scene, rng.randrange(1 << 30))


def _blocks(rng: random.Random) -> tuple[dict, str, str]:
    state = pipeline_state(rng, _scene(rng))
    objects, positions = detail_blocks(state["golden"], state["questions"], state["sources"],
                                       state["answers"], state["kept"])
    return state, objects, positions


def object_summary(rng: random.Random) -> Example:
    _, objects, _ = _blocks(rng)
    return Example("summary", fill(prompts.OBJECT_SUMMARY_PROMPT, objects), summary(objects))


def position_summary(rng: random.Random) -> Example:
    _, _, positions = _blocks(rng)
    return Example("summary", fill(prompts.POSITION_SUMMARY_PROMPT, positions),
                   summary(positions))


def final(rng: random.Random) -> Example:
    state, objects, positions = _blocks(rng)
    context = "\n".join(state["golden"])
    if rng.random() < 0.7:  # paper mode: the two summaries
        obj, pos = summary(objects), summary(positions)
    else:  # single mode: the kept answers as both
        kept = [a for a, k in zip(state["answers"], state["kept"], strict=True) if k]
        obj = pos = "\n".join(kept)
    return Example("final", fill(prompts.INTEGRATE_PROMPT, context, obj, pos),
                   integrate(context, obj, pos))


IMAGE_TASKS: dict[str, Sampler] = {
    "caption": caption_image, "object_answer": object_answer,
    "position_answer": position_answer, "sentence_check": sentence_check,
    "answer_check": answer_check,
}
TEXT_TASKS: dict[str, Sampler] = {
    "caption_text": caption_text, "questions": questions, "answer_text": answer_text,
    "object_summary": object_summary, "position_summary": position_summary, "final": final,
}
