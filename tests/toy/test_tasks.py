import random

from scalecap_ray.prompts import INSTRUCTION_STEM
from scalecap_ray.toy import tasks
from scalecap_ray.toy.language import mentions
from scalecap_ray.toy.world import PRIOR_PAIRS


def test_integration_enriches_each_context_object_and_drops_those_said_absent():
    context = "A table is at the bottom.\nA cup is on the table.\nA bird is on the left."
    objects = "The table is large and red. The cup is small and blue. There is no bird."
    positions = "The table is at the bottom. The cup is in the centre, on the table."
    assert tasks.integrate(context, objects, positions) == (
        "A large red table is at the bottom. A small blue cup is in the centre, on the table.")
    # No information about an object: the context sentence stands as it is.
    assert tasks.integrate("A cup is on the table.", "", "") == "A cup is on the table."


def test_summaries_collect_the_detail_lines_in_order_once():
    block = ("Sentence: A cup is on the table.\nDetails about the cup: The cup is red.\n"
             "Details about the table: The table is big.\nSentence: A table is here.\n"
             "Details about the table: The table is big.")
    assert tasks.summary(block) == "The cup is red. The table is big."
    assert tasks.summary("Sentence: A cup is on the table.") == ""


def test_every_sampler_makes_examples_from_the_real_prompts():
    rng = random.Random(0)
    for name, sampler in {**tasks.IMAGE_TASKS, **tasks.TEXT_TASKS}.items():
        for _ in range(30):
            ex = sampler(rng)
            assert ex.prompt and (ex.target or name in ("object_summary",
                                                         "position_summary", "questions"))
            assert (ex.scene is not None) == (name in tasks.IMAGE_TASKS)


def test_checks_are_balanced_and_text_captions_carry_the_prior():
    rng = random.Random(1)
    answers = [tasks.sentence_check(rng).target for _ in range(400)]
    assert 0.4 < answers.count("Yes.") / len(answers) < 0.6
    paired = with_anchor = 0
    for _ in range(2000):
        caption = tasks.caption_text(rng).target
        for anchor, partner in PRIOR_PAIRS.items():
            if f"A {anchor} is" in caption:
                with_anchor += 1
                paired += f"A {partner} is on the {anchor}." in caption
    assert paired / with_anchor > 0.75


def test_image_captions_name_what_is_drawn_and_sometimes_an_unseen_partner():
    rng = random.Random(3)
    unseen = absent = 0
    for _ in range(3000):
        ex = tasks.caption_image(rng)
        named = set(mentions(ex.target))
        assert ex.scene.kinds <= named
        for kind in named - ex.scene.kinds:  # only ever the partner of an anchor drawn
            assert any(PRIOR_PAIRS[a] == kind for a in PRIOR_PAIRS if a in ex.scene.kinds)
        for anchor, partner in PRIOR_PAIRS.items():
            if anchor in ex.scene.kinds and partner not in ex.scene.kinds:
                absent += 1
                unseen += partner in named
    assert abs(unseen / absent - tasks.UNSEEN_PARTNER) < 0.06


def test_pipeline_states_are_consistent():
    rng = random.Random(2)
    for _ in range(200):
        state = tasks.pipeline_state(rng, tasks._scene(rng))
        n = len(state["questions"])
        assert len(state["answers"]) == len(state["kept"]) == 2 * n
        assert all(q.startswith(INSTRUCTION_STEM) for q in state["questions"])
        assert all(0 <= s < len(state["golden"]) for s in state["sources"])
