"""Draw the bundled example images: six scenes of the toy world (see
`scalecap_ray/toy/world.py`), so `make demo` captions them with the toy model and
`scalecap-ray eval` can score the result against `truth.jsonl`.  Two of them invite the
model's planted prior: a table without a cup and a tree without a bird.

Run from the repository root: `python examples/make_images.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

from scalecap_ray.toy.draw import draw_scene
from scalecap_ray.toy.world import Scene, ToyObject

HERE = Path(__file__).parent
OUT = HERE / "images"


def _scene(*objects: tuple[str, str, str, int, int]) -> Scene:
    from scalecap_ray.toy.world import CAPTION_ORDER

    return Scene(tuple(sorted((ToyObject(*o) for o in objects),
                              key=lambda o: CAPTION_ORDER[o.kind])))


SCENES = {
    "table_with_cup": _scene(("table", "red", "large", 2, 1), ("cup", "blue", "small", 1, 1)),
    "table_without_cup": _scene(("table", "purple", "large", 2, 1),
                                ("book", "green", "small", 1, 1),
                                ("lamp", "yellow", "small", 2, 2)),
    "cat_on_chair": _scene(("chair", "yellow", "large", 2, 0), ("cat", "purple", "small", 1, 0),
                           ("sign", "red", "large", 1, 2)),
    "tree_and_bench": _scene(("tree", "green", "large", 1, 0), ("bench", "orange", "large", 2, 2)),
    "boat": _scene(("boat", "blue", "large", 1, 1), ("sign", "yellow", "small", 0, 2)),
    "car_and_lamp": _scene(("car", "red", "small", 2, 0), ("lamp", "orange", "large", 0, 1)),
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    inputs, truth = [], []
    for i, (name, scene) in enumerate(SCENES.items()):
        path = OUT / f"{name}.png"
        draw_scene(scene, seed=i).save(path, optimize=True)
        inputs.append(json.dumps({"id": name, "image": f"images/{path.name}"}))
        truth.append(json.dumps({"id": name, **scene.to_json()}))
    (HERE / "images.jsonl").write_text("\n".join(inputs) + "\n")
    (HERE / "truth.jsonl").write_text("\n".join(truth) + "\n")


if __name__ == "__main__":
    main()
