from scalecap_ray.text.instructions import merge_instructions, parse_instructions
from scalecap_ray.toy import language as lang
from scalecap_ray.toy.language import Claim
from scalecap_ray.toy.world import Scene, ToyObject, scenes

TABLE = ToyObject("table", "red", "large", 2, 1)
CUP = ToyObject("cup", "blue", "small", 1, 1)
TREE = ToyObject("tree", "green", "large", 0, 0)
SCENE = Scene((TABLE, TREE, CUP))


def test_what_a_perfect_captioner_says_at_each_stage():
    assert lang.caption(SCENE) == ("A table is at the bottom. A tree is at the top left. "
                                   "A cup is on the table.")
    cup = lang.claim_of(SCENE, CUP)
    assert lang.object_answer(cup) == "The cup is small and blue."
    assert lang.position_answer(cup) == "The cup is in the centre, on the table."
    assert lang.final_sentence(cup) == "A small blue cup is in the centre, on the table."
    assert lang.object_answer(Claim("cat", absent=True)) == "There is no cat."
    assert lang.instructions("A cup is on the table.") == (
        "Describe more details about the cup.\nDescribe more details about the table.")
    assert lang.instructions("The sky is clear.") == ""


def test_instructions_parse_with_the_pipelines_own_parser():
    text = lang.instructions("A cup is on the table. A table is at the bottom.")
    questions, _ = merge_instructions([parse_instructions(text)], 20)
    assert questions == ["Describe more details about the cup.",
                         "Describe more details about the table."]


def test_the_reader_gets_back_what_the_writer_said():
    for scene in scenes(11, 200):
        for obj in scene.objects:
            claim = lang.claim_of(scene, obj)
            said = Claim(claim.kind, claim.size, claim.colour, claim.position, claim.on)
            assert lang.read_claim(lang.final_sentence(said)) == said
            assert lang.read_claim(lang.object_answer(claim)) == Claim(
                claim.kind, size=claim.size, colour=claim.colour)
            assert lang.read_claim(lang.position_answer(claim)) == Claim(
                claim.kind, position=claim.position, on=claim.on)


def test_the_reader_is_lenient():
    assert lang.read_claim("There's a large red Table next to the cup, in the center.") == \
        Claim("table", "large", "red", "centre", None, "cup")
    assert lang.read_claim("The sky is blue.") is None
    assert lang.read_claim("There is no bird.") == Claim("bird", absent=True)
    assert lang.mentions("Two cups and a table; the cup is small.") == ["cup", "table", "cup"]
    claims = lang.read_claims("A cup is on the table.\nThe cup is red. Nothing else.")
    assert claims == [Claim("cup", on="table"), Claim("cup", colour="red")]
    assert lang.merge_claims([*claims, Claim("cup", absent=True)]) == {
        "cup": Claim("cup", absent=True)}
    assert lang.merge_claims(claims) == {"cup": Claim("cup", colour="red", on="table")}
