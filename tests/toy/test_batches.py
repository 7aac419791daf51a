import random

import numpy as np
import torch
from PIL import Image

from scalecap_ray.toy import tasks
from scalecap_ray.toy.batches import (
    AUX_LABELS,
    IGNORE,
    IMAGE_TOKENS,
    Encoder,
    aux_labels,
    collate,
    image_array,
    patchify,
)
from scalecap_ray.toy.model import MAX_PIXELS, MIN_PIXELS, build_tokenizer, prompt_pieces
from scalecap_ray.toy.world import KINDS, Scene, ToyObject, scenes


def test_patchify_matches_the_qwen2_vl_image_processor():
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

    from scalecap_ray.smoke.files import IMAGE_MEAN, IMAGE_STD

    processor = Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS,
                                      patch_size=14, temporal_patch_size=2, merge_size=2,
                                      image_mean=IMAGE_MEAN, image_std=IMAGE_STD)
    arrays = np.stack([image_array(s, i) for i, s in enumerate(scenes(4, 3))])
    expected = processor(images=[Image.fromarray(a) for a in arrays],
                         return_tensors="pt")["pixel_values"]
    got = patchify(torch.from_numpy(arrays))
    assert got.shape == expected.shape == (3 * 144, 1176)
    assert torch.allclose(got, expected, atol=1e-5)


def test_aux_labels_name_each_tokens_cell():
    scene = Scene((ToyObject("table", "red", "large", 2, 1),
                   ToyObject("cup", "blue", "small", 1, 1)))
    labels = aux_labels(scene)
    assert labels.shape == (IMAGE_TOKENS, len(AUX_LABELS))
    # Token (row 2, col 3) of the 6 x 6 grid lies in cell (1, 1): the cup, on the table.
    cup = labels[2 * 6 + 3].tolist()
    assert cup == [KINDS.index("cup"), 2, 0, 1, 1, KINDS.index("table")]
    empty = labels[0].tolist()
    assert empty == [len(KINDS), IGNORE, IGNORE, 0, 0, IGNORE]


def test_the_loss_falls_on_the_reply_and_its_end_only():
    tok = build_tokenizer(1)
    encoder = Encoder(tok)
    rng = random.Random(0)
    image_ex, text_ex = tasks.caption_image(rng), tasks.final(rng)
    batch = collate(encoder, [image_ex, text_ex], pad_id=tok.token_to_id("<|endoftext|>"))
    for i, ex in enumerate((image_ex, text_ex)):
        labelled = [t for t in batch.labels[i].tolist() if t != IGNORE]
        assert tok.decode(labelled[:-1]) == ex.target
        assert labelled[-1] == tok.token_to_id("<|im_end|>")
    assert int(batch.mm_token_type_ids[0].sum()) == IMAGE_TOKENS
    assert int(batch.mm_token_type_ids[1].sum()) == 0
    assert batch.pixel_values.shape == (144, 1176) and batch.aux.shape[0] == IMAGE_TOKENS


def test_prompt_pieces_are_single_tokens_and_world_words_too():
    tok = build_tokenizer(1)
    for piece in prompt_pieces():
        assert len(tok.encode(piece, add_special_tokens=False).ids) == 1, piece
    for word in [*KINDS, "red", "small", "left", "centre", "top", "is", "on", "and"]:
        assert len(tok.encode(" " + word, add_special_tokens=False).ids) == 1, word
    assert build_tokenizer(1).to_str() == tok.to_str()  # deterministic
