import numpy as np

from scalecap_ray.toy.draw import CELL, IMAGE_SIZE, RGB, SHAPES, draw_scene
from scalecap_ray.toy.world import KINDS, Scene, ToyObject, scenes


def colour_share(image, row, col, colour) -> float:
    """Share of a cell's pixels close to `colour` (the fill, not the pattern's shade)."""
    px = np.asarray(image, dtype=int)[row * CELL:(row + 1) * CELL, col * CELL:(col + 1) * CELL]
    return float((np.abs(px - np.array(RGB[colour])).sum(-1) < 30).mean())


def test_each_object_is_drawn_in_its_own_cell_and_colour():
    scene = Scene((ToyObject("table", "red", "large", 2, 0),
                   ToyObject("cup", "blue", "small", 1, 0),
                   ToyObject("tree", "yellow", "large", 0, 2)))
    image = draw_scene(scene)
    assert image.size == (IMAGE_SIZE, IMAGE_SIZE) and image.mode == "RGB"
    assert colour_share(image, 2, 0, "red") > 0.15
    assert colour_share(image, 1, 0, "blue") > 0.05
    assert colour_share(image, 0, 2, "yellow") > 0.15
    assert colour_share(image, 1, 1, "red") == colour_share(image, 1, 1, "blue") == 0.0


def test_every_kind_has_its_own_silhouette():
    masks = set()
    for kind in KINDS:
        im = np.asarray(draw_scene(Scene((ToyObject(kind, "red", "large", 1, 1),))))
        masks.add((np.abs(im - np.array(RGB["red"])).sum(-1) < 30).tobytes())
    assert len(masks) == len(KINDS) == len(SHAPES)


def test_drawing_is_deterministic_and_jitter_moves_objects():
    scene = scenes(2, 1)[0]
    assert draw_scene(scene, 5).tobytes() == draw_scene(scene, 5).tobytes()
    assert any(draw_scene(scene, s).tobytes() != draw_scene(scene, 5).tobytes()
               for s in range(6, 10))
