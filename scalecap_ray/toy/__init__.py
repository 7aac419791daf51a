"""The toy world and the toy model: a small Qwen2.5-VL trained by the project on scenes
whose truth it knows, so caption quality can be measured without a model hub.

- `world`, `draw`: scenes (objects with kind, colour, size, cell; "on" relations) and
  their images;
- `language`: what a perfect captioner of the world says at every stage, and a reader
  that takes facts back out of any text;
- `tasks`, `batches`, `train`: the training recipe (`scalecap-ray toy-model DIR`);
- `metrics`, `evaluate`: CHAIR, recall and facts against the truth (`scalecap-ray eval`).

The trained checkpoint is committed (`checkpoint/`, under 5 MB): `toy_model_dir()` returns
it, and refuses a checkpoint trained with another recipe version than this code's.
"""

from __future__ import annotations

import json
from pathlib import Path

# Bump when anything that decides the trained weights changes (world, language, tokenizer,
# sizes, recipe); then retrain and commit the new checkpoint.
RECIPE_VERSION = "1"
MARKER = "scalecap_toy.json"
CHECKPOINT = Path(__file__).parent / "checkpoint"


class ToyModelMissing(ValueError):
    pass


def read_marker(model_dir: str | Path) -> dict:
    path = Path(model_dir) / MARKER
    if not path.is_file():
        raise ToyModelMissing(f"{model_dir}: no toy model here ({MARKER} is missing); "
                              "train one with `scalecap-ray toy-model DIR`")
    return json.loads(path.read_text())


def toy_model_dir(path: str | Path | None = None) -> Path:
    """The toy checkpoint (`path`, else the committed one), checked against this code's
    recipe version."""
    model_dir = Path(path) if path is not None else CHECKPOINT
    found = read_marker(model_dir).get("recipe_version")
    if found != RECIPE_VERSION:
        raise ToyModelMissing(
            f"{model_dir}: toy model of recipe version {found}, but this code trains version "
            f"{RECIPE_VERSION}; retrain with `scalecap-ray toy-model DIR`")
    return model_dir
