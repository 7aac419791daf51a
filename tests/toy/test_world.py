from collections import Counter

from scalecap_ray.toy.world import (
    CAPTION_ORDER,
    KINDS,
    PRIOR_PAIRS,
    Scene,
    ToyObject,
    WorldParams,
    scenes,
)


def test_scenes_are_the_same_for_a_seed_and_differ_between_seeds():
    assert scenes(7, 50) == scenes(7, 50)
    assert scenes(7, 50) != scenes(8, 50)


def test_every_scene_is_well_formed():
    for scene in scenes(1, 2000):
        kinds = [o.kind for o in scene.objects]
        cells = [(o.row, o.col) for o in scene.objects]
        assert 1 <= len(kinds) <= 4
        assert len(set(kinds)) == len(kinds) and len(set(cells)) == len(cells)
        assert all(0 <= r < 3 and 0 <= c < 3 for r, c in cells)
        assert [CAPTION_ORDER[k] for k in kinds] == sorted(CAPTION_ORDER[k] for k in kinds)


def test_anchors_carry_their_partner_at_the_world_rate():
    for rate in (0.5, 0.95):
        with_anchor = paired = 0
        for scene in scenes(3, 4000, WorldParams(pair_rate=rate)):
            for anchor, partner in PRIOR_PAIRS.items():
                a = scene.find(anchor)
                if a is None:
                    continue
                with_anchor += 1
                p = scene.find(partner)
                paired += p is not None and scene.on(p) is a
        # A partner cannot join a full scene or a top-row anchor: a little under the rate.
        assert rate - 0.2 < paired / with_anchor <= rate + 0.02


def test_relations_follow_the_layout():
    table = ToyObject("table", "red", "large", 2, 1)
    cup = ToyObject("cup", "blue", "small", 1, 1)
    car = ToyObject("car", "green", "small", 1, 2)
    boat = ToyObject("boat", "green", "small", 0, 1)
    scene = Scene((table, car, boat, cup))
    assert scene.on(cup) is table
    assert scene.on(boat) is None  # a boat cannot sit on a cup
    assert scene.on(car) is None  # nothing under it
    assert scene.beside(cup) is car and scene.beside(car) is cup
    assert scene.kinds == {"table", "cup", "car", "boat"}
    assert Scene.from_json(scene.to_json()) == scene
    assert scene.to_json()["objects"][3] == {
        "kind": "cup", "colour": "blue", "size": "small", "position": "centre", "row": 1,
        "col": 1, "on": "table", "beside": "car"}


def test_every_kind_occurs():
    counts = Counter(o.kind for s in scenes(5, 1000) for o in s.objects)
    assert set(counts) == set(KINDS)
