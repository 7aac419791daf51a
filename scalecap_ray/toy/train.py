"""Training the toy model on two CPU cores, deterministic from the recipe's seed.

Three phases, the way real VLMs are built:
1. `text`: the language model alone learns the world's language and its prior: captions
   without images, instructions, summaries, final captions;
2. `vision`: the vision tower alone learns to read each image token's cell (what object,
   its colour and size, the cell's row and column, what the object sits on) through small
   heads scored against the language model's own word embeddings (`heads.py`), thrown
   away afterwards;
3. `joint`: every request of the pipeline, with and without images.  It is kept short on
   purpose, as multimodal training is next to a language model's pre-training: the prior
   of phase 1 is not fully unlearned, and leaks into captions as hallucinations.

Examples are drawn in a separate process while the model trains.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch

from scalecap_ray.toy import tasks
from scalecap_ray.toy.batches import (
    IGNORE,
    Batch,
    Encoder,
    aux_labels,
    collate,
    image_array,
    patchify,
)
from scalecap_ray.toy.draw import IMAGE_SIZE
from scalecap_ray.toy.heads import WordHeads
from scalecap_ray.toy.model import PATCH, Sizes, build_tokenizer, hf_config
from scalecap_ray.toy.world import sample_scene

logger = logging.getLogger(__name__)

JOINT_MIX = {"caption": 0.22, "caption_text": 0.08, "object_answer": 0.16,
             "position_answer": 0.12, "sentence_check": 0.08, "answer_check": 0.08,
             "answer_text": 0.02, "questions": 0.02, "object_summary": 0.04,
             "position_summary": 0.04, "final": 0.14}
TEXT_MIX = {"caption_text": 0.25, "questions": 0.1, "object_summary": 0.15,
            "position_summary": 0.15, "final": 0.3, "answer_text": 0.05}


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the trained weights."""

    seed: int = 20261202
    sizes: Sizes = field(default_factory=Sizes)
    batch: int = 32
    text_steps: int = 900
    vision_steps: int = 400
    joint_steps: int = 1250
    lr: float = 2e-3
    warmup: int = 100
    aux_weight: float = 0.5  # of the vision heads' loss during the joint phase
    joint_mix: dict[str, float] = field(default_factory=lambda: dict(JOINT_MIX))
    text_mix: dict[str, float] = field(default_factory=lambda: dict(TEXT_MIX))
    bf16: bool = True  # autocast matmuls to bfloat16 (weights stay float32)

    def to_json(self) -> dict:
        return asdict(self)


SAMPLERS = {**tasks.IMAGE_TASKS, **tasks.TEXT_TASKS}


def _examples(seed: int, mix: dict[str, float], batch: int) -> Iterator[list[tasks.Example]]:
    rng = random.Random(seed)
    names, weights = list(mix), list(mix.values())
    while True:
        yield [SAMPLERS[n](rng) for n in rng.choices(names, weights=weights, k=batch)]


def _worker(recipe: Recipe, tokenizer_json: str, phase: str, steps: int, queue) -> None:
    """Draws the phase's batches (as plain arrays) into `queue`."""
    import numpy as np
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)  # the trainer's own, never a rebuilt one
    encoder = Encoder(tok)
    pad = tok.token_to_id("<|endoftext|>")
    seed = recipe.seed + {"vision": 1, "text": 2, "joint": 3}[phase]
    if phase == "vision":
        rng = random.Random(seed)
        for _ in range(steps):
            scenes = [sample_scene(rng, tasks.IMAGE_WORLD) for _ in range(recipe.batch)]
            arrays = np.stack([image_array(s, rng.randrange(1 << 30)) for s in scenes])
            queue.put(("vision", arrays, torch.cat([aux_labels(s) for s in scenes]).numpy()))
        return
    mix = recipe.text_mix if phase == "text" else recipe.joint_mix
    for _, examples in zip(range(steps), _examples(seed, mix, recipe.batch), strict=False):
        # Plain arrays cross the process boundary; tensors would need the sender alive.
        parts = [{k: None if v is None else v.numpy() for k, v in vars(b).items()}
                 for b in (collate(encoder, group, pad) for group in buckets(encoder, examples))]
        queue.put(("lm", parts))


def buckets(encoder: Encoder, examples: list[tasks.Example], most: int = 16
            ) -> list[list[tasks.Example]]:
    """A step's examples in groups of similar length (images apart), so little of each
    forward pass is padding: prompts range from 50 to 250 tokens."""
    with_image = [ex for ex in examples if ex.scene is not None]
    text = sorted((ex for ex in examples if ex.scene is None),
                  key=lambda ex: len(encoder.encode(ex)[0]))
    groups = [with_image[i:i + 2 * most] for i in range(0, len(with_image), 2 * most)]
    groups += [text[i:i + most] for i in range(0, len(text), most)]
    return groups


def _batches(recipe: Recipe, tokenizer, phase: str, steps: int) -> Iterator[tuple]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue(maxsize=8)
    proc = ctx.Process(target=_worker, daemon=True,
                       args=(recipe, tokenizer.to_str(), phase, steps, queue))
    proc.start()
    try:
        for _ in range(steps):
            yield queue.get(timeout=600)
    finally:
        proc.kill()
        proc.join()


def _tensors(item: tuple) -> tuple:
    if item[0] == "vision":
        return item[0], item[1], torch.from_numpy(item[2])
    return item[0], [Batch(**{k: None if v is None else torch.from_numpy(v)
                              for k, v in part.items()}) for part in item[1]]


class ToyTrainer:
    def __init__(self, recipe: Recipe):
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        from scalecap_ray.smoke.grammar import SPECIAL_TOKENS

        self.recipe = recipe
        torch.manual_seed(recipe.seed)
        self.tokenizer = build_tokenizer(recipe.seed)
        vocab = -(-self.tokenizer.get_vocab_size() // 64) * 64
        special = {t: self.tokenizer.token_to_id(t) for t in SPECIAL_TOKENS}
        self.config = hf_config(recipe.sizes, vocab, special)
        self.model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**self.config))
        self.heads = WordHeads(self.model.model.language_model.embed_tokens, self.tokenizer,
                               recipe.sizes.text_hidden)
        self.history: dict[str, list[float]] = {}

    # -- losses ------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.recipe.bf16)

    def image_features(self, pixels: torch.Tensor, count: int):
        side = IMAGE_SIZE // PATCH
        grid = torch.tensor([[1, side, side]] * count)
        return self.model.model.get_image_features(pixels, grid, return_dict=True), grid

    def vision_loss(self, arrays, labels) -> torch.Tensor:
        with self._autocast():
            feats, _ = self.image_features(patchify(torch.from_numpy(arrays)), len(arrays))
            return self.heads.loss(torch.cat(feats.pooler_output), labels)

    def lm_loss(self, parts: list[Batch], aux_weight: float) -> torch.Tensor:
        """Mean loss per reply token over the step's parts (plus the vision heads' loss,
        weighted, on the parts with images)."""
        tokens = sum(int((b.labels[:, 1:] != IGNORE).sum()) for b in parts)
        total = sum(self._part_loss(b, aux_weight) * int((b.labels[:, 1:] != IGNORE).sum())
                    for b in parts)
        return total / tokens

    def _part_loss(self, b: Batch, aux_weight: float) -> torch.Tensor:
        with self._autocast():
            mm = None
            if b.pixel_values is not None:
                mm = {"image": self.model.model.get_image_features(
                    b.pixel_values, b.image_grid_thw, return_dict=True)}
            out = self.model.model(input_ids=b.input_ids, attention_mask=b.attention_mask,
                                   mm_token_type_ids=b.mm_token_type_ids,
                                   image_grid_thw=b.image_grid_thw, mm_encoder_outputs=mm)
            hidden, target = out.last_hidden_state[:, :-1], b.labels[:, 1:]
            keep = target != IGNORE
            loss = torch.nn.functional.cross_entropy(
                self.model.lm_head(hidden[keep]).float(), target[keep])
            if mm is not None and aux_weight > 0:
                loss = loss + aux_weight * self.heads.loss(
                    torch.cat(mm["image"].pooler_output), b.aux)
        return loss

    # -- phases ------------------------------------------------------------------------------
    def _run(self, phase: str, steps: int, params, loss_of: Callable[[tuple], torch.Tensor],
             log_every: int = 100) -> None:
        if steps <= 0:
            return
        r = self.recipe
        opt = torch.optim.AdamW(params, lr=r.lr, weight_decay=0.01, betas=(0.9, 0.98))

        def schedule(step: int) -> float:
            if step < r.warmup:
                return (step + 1) / r.warmup
            return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - r.warmup)
                                                      / max(steps - r.warmup, 1)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        history = self.history.setdefault(phase, [])
        running, start = [], time.monotonic()
        for step, item in enumerate(_batches(r, self.tokenizer, phase, steps)):
            loss = loss_of(_tensors(item))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            running.append(loss.item())
            if (step + 1) % log_every == 0 or step + 1 == steps:
                history.append(round(sum(running) / len(running), 4))
                logger.info("%s step %d/%d loss %.4f (%.0f s)", phase, step + 1, steps,
                            history[-1], time.monotonic() - start)
                running = []

    def train(self) -> None:
        r = self.recipe
        lm = list(self.model.model.language_model.parameters())
        self._run("text", r.text_steps, lm, lambda item: self.lm_loss(item[1], 0.0))
        # After the text phase: the vision heads read against the words it has placed.
        vision = [*self.model.model.visual.parameters(), *self.heads.parameters()]
        self._run("vision", r.vision_steps, vision,
                  lambda item: self.vision_loss(item[1], item[2]))
        everything = [*self.model.parameters(), *self.heads.parameters()]
        self._run("joint", r.joint_steps, everything,
                  lambda item: self.lm_loss(item[1], r.aux_weight))
