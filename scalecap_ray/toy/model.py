"""The toy model's shape: a small Qwen2.5-VL (the architecture real checkpoints have, so
vLLM runs it through their code path) and a tokenizer built for the world's language.

The tokenizer is byte-level BPE (Qwen2's pre-tokenizer rule) trained on the world's
sentences, so every word of the world is one token, plus one token for each fixed piece
of the default prompts (P1-P5, the grounding questions): a prompt costs a few tokens,
which is what lets the model train on two CPU cores.  Any other text still tokenizes
(bytes), but the model was never trained on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from scalecap_ray import prompts
from scalecap_ray.smoke.files import qwen2_5_vl_config
from scalecap_ray.smoke.grammar import _PRETOKENIZE_REGEX, SPECIAL_TOKENS

# Pieces of text the pipeline always sends verbatim: one token each.
PROMPT_TEMPLATES = (
    prompts.CAPTION_PROMPT, prompts.QUESTIONS_PROMPT, prompts.OBJECT_SUMMARY_PROMPT,
    prompts.POSITION_SUMMARY_PROMPT, prompts.INTEGRATE_PROMPT,
    prompts.SENTENCE_GROUNDING_PROMPT, prompts.ANSWER_GROUNDING_PROMPT,
)
FIXED_PIECES = (
    "You are a helpful assistant.",
    prompts.POSITION_STEM + " the", prompts.INSTRUCTION_STEM + " the",
    "Sentence:", "Details about the", "Position about the",
)
VOCAB_TARGET = 440
PATCH, MERGE, TEMPORAL_PATCH = 14, 2, 2
MIN_PIXELS = 56 * 56
MAX_PIXELS = 168 * 168


@dataclass(frozen=True)
class Sizes:
    """Layer sizes.  Head dims are 64: vLLM's CPU attention rejects smaller heads."""

    text_hidden: int = 192
    text_heads: int = 3
    text_kv_heads: int = 1
    text_layers: int = 4
    text_intermediate: int = 512
    vision_hidden: int = 64
    vision_heads: int = 1
    vision_depth: int = 2
    vision_intermediate: int = 192


def prompt_pieces() -> list[str]:
    pieces = [p for t in PROMPT_TEMPLATES for p in t.split("{}") if p.strip()]
    return list(dict.fromkeys([*pieces, *FIXED_PIECES]))


def corpus(seed: int, count: int = 2000) -> list[str]:
    """The world's text, for the tokenizer to learn its words: what the language writes
    for `count` scenes at every stage, instruction lines and the detail blocks' labels,
    and the chat template's role names."""
    from scalecap_ray.toy import language as lang
    from scalecap_ray.toy.world import scenes

    lines = ["system\n", "user\n", "assistant\n", "Yes.", "No.", "Details about the: ",
             "Position about the: "] * count
    for scene in scenes(seed, count):
        claims = [lang.claim_of(scene, o) for o in scene.objects]
        lines.append(lang.caption(scene))
        lines.append(" ".join(lang.object_answer(c) + " " + lang.position_answer(c)
                              for c in claims))
        lines.append(" ".join(lang.final_sentence(c) for c in claims))
        lines.append(lang.instructions(lang.caption(scene)))
        lines += [f"There is no {c.kind}." for c in claims]
    return lines


def build_tokenizer(seed: int):
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_TARGET, min_frequency=2, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(seed), trainer=trainer)
    tok.add_tokens([AddedToken(p, normalized=False, special=False) for p in prompt_pieces()])
    return tok


def hf_config(sizes: Sizes, vocab: int, special_ids: dict[str, int]) -> dict:
    s = sizes
    return qwen2_5_vl_config(
        special_ids, vocab=vocab, tie_embeddings=True, rope_theta=10000.0, max_positions=4096,
        patch=PATCH, merge=MERGE, temporal_patch=TEMPORAL_PATCH,
        text={"hidden": s.text_hidden, "intermediate": s.text_intermediate,
              "layers": s.text_layers, "heads": s.text_heads, "kv_heads": s.text_kv_heads},
        vision={"depth": s.vision_depth, "hidden": s.vision_hidden,
                "intermediate": s.vision_intermediate, "heads": s.vision_heads})
