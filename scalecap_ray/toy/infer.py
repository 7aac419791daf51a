"""Running the toy model in transformers, without vLLM: greedy replies and the probability
of every token of a given reply.  Training uses it to report what the model learned; the
pipeline itself always runs the model in vLLM."""

from __future__ import annotations

import torch

from scalecap_ray.toy.batches import IGNORE, Encoder, collate
from scalecap_ray.toy.tasks import Example


def _prepare(encoder: Encoder, examples: list[Example]):
    """Prompts only (the reply left out), padded on the left for generation."""
    prompts = [Example(ex.task, ex.prompt, "", ex.scene, ex.image_seed) for ex in examples]
    pad = encoder.tok.token_to_id("<|endoftext|>")
    b = collate(encoder, prompts, pad_id=pad)
    # collate pads on the right and appends the end token as the reply: drop it, move left.
    lengths = (b.attention_mask.sum(1) - 1).tolist()
    width = max(lengths)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, width - n:] = b.input_ids[i, :n]
        mask[i, width - n:] = 1
    return ids, mask, b


@torch.no_grad()
def generate(model, encoder: Encoder, examples: list[Example], max_new_tokens: int = 80
             ) -> list[str]:
    """Greedy replies to `examples` (their targets are ignored)."""
    ids, mask, b = _prepare(encoder, examples)
    images = {} if b.pixel_values is None else {
        "pixel_values": b.pixel_values, "image_grid_thw": b.image_grid_thw,
        "mm_token_type_ids": (ids == encoder.image_pad).int()}
    out = model.generate(input_ids=ids, attention_mask=mask, **images,
                         max_new_tokens=max_new_tokens, do_sample=False,
                         eos_token_id=encoder.end, pad_token_id=int(ids[0, 0]))
    return [encoder.tok.decode(row[ids.shape[1]:].tolist(), skip_special_tokens=True)
            for row in out]


@torch.no_grad()
def reply_probs(model, encoder: Encoder, examples: list[Example]) -> list[list[tuple[str, float]]]:
    """For each example, every token of its target (then the end of turn) with the
    probability the model gives it after the prompt and the tokens before it."""
    b = collate(encoder, examples, pad_id=encoder.tok.token_to_id("<|endoftext|>"))
    mm = None
    if b.pixel_values is not None:
        mm = {"image": model.model.get_image_features(b.pixel_values, b.image_grid_thw,
                                                      return_dict=True)}
    out = model.model(input_ids=b.input_ids, attention_mask=b.attention_mask,
                      mm_token_type_ids=b.mm_token_type_ids, image_grid_thw=b.image_grid_thw,
                      mm_encoder_outputs=mm)
    probs = model.lm_head(out.last_hidden_state[:, :-1]).float().softmax(-1)
    target = b.labels[:, 1:]
    result = []
    for i in range(len(examples)):
        keep = (target[i] != IGNORE).nonzero().flatten().tolist()
        result.append([(encoder.tok.id_to_token(int(target[i, t])),
                        float(probs[i, t, target[i, t]])) for t in keep])
    return result
