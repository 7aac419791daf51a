"""Turning training examples into model inputs, exactly as vLLM will see the requests.

Prompts go through the model's own chat template (the same rendering vLLM applies), and
images through the pipeline's own normalisation (`io/images.normalize_image`: RGB JPEG)
and Qwen2-VL's patch layout.  `patchify` does in one tensor operation for a whole batch
what `Qwen2VLImageProcessor` does image by image; a test checks they agree.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from scalecap_ray.io.images import normalize_image
from scalecap_ray.smoke.files import IMAGE_MEAN, IMAGE_STD
from scalecap_ray.smoke.grammar import CHAT_TEMPLATE
from scalecap_ray.toy.draw import IMAGE_SIZE, draw_scene
from scalecap_ray.toy.model import MERGE, PATCH, TEMPORAL_PATCH
from scalecap_ray.toy.tasks import Example
from scalecap_ray.toy.world import GRID, KINDS, Scene

GRID_TOKENS = IMAGE_SIZE // PATCH // MERGE  # image tokens per side
IMAGE_TOKENS = GRID_TOKENS * GRID_TOKENS
IGNORE = -100
# What the vision tower is also taught to read off each image token (its cell's object).
AUX_LABELS = ("kind", "colour", "size", "row", "col", "on")


def image_bytes(scene: Scene, seed: int) -> bytes:
    """The scene's image as the pipeline's load stage hands it to the engine."""
    buf = io.BytesIO()
    draw_scene(scene, seed).save(buf, format="BMP")  # lossless and quick to write
    return normalize_image(buf.getvalue()).data


def image_array(scene: Scene, seed: int) -> np.ndarray:
    with Image.open(io.BytesIO(image_bytes(scene, seed))) as im:
        return np.asarray(im.convert("RGB"))


def patchify(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (n, H, W, 3) -> Qwen2-VL pixel values (n * patches, 3 * 2 * 14 * 14):
    rescaled, normalised, the frame repeated over the temporal patch, patches grouped so
    each 2 x 2 block that the merger joins is consecutive."""
    n, h, w, _ = images.shape
    x = images.permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    x = ((x - mean) / std).unsqueeze(1).expand(n, TEMPORAL_PATCH, 3, h, w)
    gh, gw = h // PATCH, w // PATCH
    x = x.reshape(n, TEMPORAL_PATCH, 3, gh // MERGE, MERGE, PATCH, gw // MERGE, MERGE, PATCH)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(n * gh * gw, 3 * TEMPORAL_PATCH * PATCH * PATCH)


def aux_labels(scene: Scene) -> torch.Tensor:
    """(IMAGE_TOKENS, len(AUX_LABELS)) class ids per image token, row-major; IGNORE where
    a label does not apply (no object in the token's cell)."""
    from scalecap_ray.toy.world import COLOURS, SIZES

    none = len(KINDS)
    out = torch.full((IMAGE_TOKENS, len(AUX_LABELS)), IGNORE, dtype=torch.long)
    per_cell = GRID_TOKENS // GRID
    for t in range(IMAGE_TOKENS):
        r, c = (t // GRID_TOKENS) // per_cell, (t % GRID_TOKENS) // per_cell
        out[t, 3], out[t, 4] = r, c
        obj = scene.at(r, c)
        if obj is None:
            out[t, 0] = none
            continue
        on = scene.on(obj)
        out[t, 0] = KINDS.index(obj.kind)
        out[t, 1] = COLOURS.index(obj.colour)
        out[t, 2] = SIZES.index(obj.size)
        out[t, 5] = KINDS.index(on.kind) if on else none
    return out


class Encoder:
    """Examples -> token ids with the loss on the reply (and its end-of-turn token)."""

    def __init__(self, tokenizer):
        from transformers import PreTrainedTokenizerFast

        self.tok = tokenizer
        self.fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer,
                                            chat_template=CHAT_TEMPLATE)
        self.image_pad = tokenizer.token_to_id("<|image_pad|>")
        self.end = tokenizer.token_to_id("<|im_end|>")

    def prompt_text(self, ex: Example) -> str:
        content = ([{"type": "image"}] if ex.scene is not None else []) + [
            {"type": "text", "text": ex.prompt}]
        return self.fast.apply_chat_template([{"role": "user", "content": content}],
                                             tokenize=False, add_generation_prompt=True)

    def encode(self, ex: Example) -> tuple[list[int], list[int]]:
        prompt = self.tok.encode(self.prompt_text(ex), add_special_tokens=False).ids
        reply = [*self.tok.encode(ex.target, add_special_tokens=False).ids, self.end]
        expanded: list[int] = []
        for t in prompt:
            expanded += [t] * IMAGE_TOKENS if t == self.image_pad else [t]
        return expanded + reply, [IGNORE] * len(expanded) + reply


@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    mm_token_type_ids: torch.Tensor
    pixel_values: torch.Tensor | None
    image_grid_thw: torch.Tensor | None
    aux: torch.Tensor | None  # (images * IMAGE_TOKENS, len(AUX_LABELS))


def collate(encoder: Encoder, examples: list[Example], pad_id: int) -> Batch:
    encoded = [encoder.encode(ex) for ex in examples]
    # Examples with an image first: the model scatters image features in batch order.
    width = max(len(ids) for ids, _ in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, (seq, lab) in enumerate(encoded):
        ids[i, :len(seq)] = torch.tensor(seq)
        labels[i, :len(lab)] = torch.tensor(lab)
        mask[i, :len(seq)] = 1
    with_image = [ex for ex in examples if ex.scene is not None]
    pixels = grid = aux = None
    if with_image:
        arrays = np.stack([image_array(ex.scene, ex.image_seed) for ex in with_image])
        pixels = patchify(torch.from_numpy(arrays))
        side = IMAGE_SIZE // PATCH
        grid = torch.tensor([[1, side, side]] * len(with_image))
        aux = torch.cat([aux_labels(ex.scene) for ex in with_image])
    return Batch(ids, mask, labels, (ids == encoder.image_pad).int(), pixels, grid, aux)
