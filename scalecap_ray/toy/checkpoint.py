"""Writing and reading the toy checkpoint: Hugging Face layout (what vLLM loads), weights
in float16 (half the size; the engine computes in float32)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from scalecap_ray.smoke.files import write_model_files
from scalecap_ray.toy import MARKER, RECIPE_VERSION
from scalecap_ray.toy.model import MAX_PIXELS, MERGE, MIN_PIXELS, PATCH, TEMPORAL_PATCH

logger = logging.getLogger(__name__)


def save_checkpoint(trainer, out: Path, info: dict) -> Path:
    """The trainer's model as a checkpoint in `out`; `info` goes into the marker file."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous()
             for k, v in trainer.model.state_dict().items()
             if k != "lm_head.weight"}  # tied to the input embeddings
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    write_model_files(out, trainer.tokenizer, trainer.config, patch=PATCH, merge=MERGE,
                      temporal_patch=TEMPORAL_PATCH, min_pixels=MIN_PIXELS,
                      max_pixels=MAX_PIXELS, marker=(MARKER, {
                          "recipe_version": RECIPE_VERSION,
                          "recipe": trainer.recipe.to_json(), **info}))
    for f in out.iterdir():
        f.chmod(0o644)
    return out


def load_model(model_dir: str | Path):
    """The checkpoint in transformers (float32), and its tokenizer."""
    from tokenizers import Tokenizer
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(model_dir),
                                                               dtype=torch.float32)
    return model.eval(), Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))


def train_toy_model(out_dir: str | Path, recipe=None) -> Path:
    """Train the toy model with `recipe` (default: the project's) and write it to
    `out_dir`; about 30 minutes on two CPU cores with the default recipe."""
    from scalecap_ray.toy.train import Recipe, ToyTrainer

    torch.set_num_threads(max(torch.get_num_threads(), 1))
    start = time.monotonic()
    trainer = ToyTrainer(recipe or Recipe())
    trainer.train()
    seconds = round(time.monotonic() - start, 1)
    logger.info("trained in %.0f s", seconds)
    return save_checkpoint(trainer, Path(out_dir), {"seconds": seconds,
                                                    "loss_history": trainer.history})
