"""The smoke model's weights: random, except where they are shaped to speak the grammar.

Hidden dimensions are laid out as one per word class, a constant, a "mode" signal and a
noise subspace.  Embeddings carry their class, the output layer maps each class to the
classes that may follow it (so the class of the next word is certain) and reads the noise
subspace to choose among words of that class.  Attention is random, writes only into the
noise subspace and attends to the image too: that is what makes the words depend on the
image and the context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalecap_ray.smoke.grammar import (
    CLASS_BIAS,
    MODE_CLASSES,
    MODE_GAIN,
    TRANSITIONS,
    WORD_CLASSES,
)

# Sizes.  head_dim must be 64: vLLM's CPU attention rejects smaller heads.
TEXT_HIDDEN = 128
TEXT_HEADS = 2
TEXT_KV_HEADS = 1
TEXT_LAYERS = 2
TEXT_INTERMEDIATE = 256
# A small rotary base makes every rotary frequency fast, so where attention looks changes
# from one position to the next: the tie-breaking noise varies along the text instead of
# settling into a loop.
ROPE_THETA = 10.0
VISION_HIDDEN = 64
VISION_DEPTH = 2
VISION_INTERMEDIATE = 128
PATCH = 14
MERGE = 2
TEMPORAL_PATCH = 2
MIN_PIXELS = 56 * 56
MAX_PIXELS = 224 * 224

# Shaping.  Every embedding carries a large constant in one dimension, so the RMS norm of
# the hidden state, and with it the scale the output layer sees, hardly moves when the
# attention noise grows or shrinks.
_CONST = 4.0  # the constant component
_CLASS_GAP = 16.0  # logits between allowed and forbidden next classes
_NOISE_LOGITS = 1.2  # std of the tie-breaking logit noise
_NOISE_EMBED = 0.5  # norm of each token's identity component
_IMAGE_FEATURES = 2.5  # norm of an image token's features
_ATTN_SHARPNESS = 10.0  # std of attention scores
_ATTN_OUT = 0.8  # norm of what one attention layer writes as noise


@dataclass(frozen=True)
class _Layout:
    """Which hidden dimensions carry what: one per word class, the constant, the mode
    signal, then the noise subspace (token identity, image features, attention output)."""

    classes: tuple[str, ...] = (*WORD_CLASSES, "other")

    @property
    def const_dim(self) -> int:
        return len(self.classes)

    @property
    def mode_dim(self) -> int:
        return len(self.classes) + 1

    @property
    def noise(self) -> slice:
        return slice(len(self.classes) + 2, TEXT_HIDDEN)

    @property
    def n_noise(self) -> int:
        return TEXT_HIDDEN - len(self.classes) - 2


def text_weights(rng: np.random.Generator, vocab: int, class_ids: dict[str, list[int]]):
    lay = _Layout()
    h, noise, n_noise = TEXT_HIDDEN, lay.noise, lay.n_noise
    token_class = ["other"] * vocab
    for cls, ids in class_ids.items():
        for i in ids:
            token_class[i] = cls

    embed = np.zeros((vocab, h))
    for i, cls in enumerate(token_class):
        embed[i, lay.classes.index(cls)] = 1.0
    embed[:, lay.const_dim] = _CONST
    embed[:, noise] = rng.normal(0.0, _NOISE_EMBED / np.sqrt(n_noise), (vocab, n_noise))

    # After an RMS norm, a unit component of the hidden state becomes ~f.
    noise_norm = np.hypot(_NOISE_EMBED, _ATTN_OUT * np.sqrt(TEXT_LAYERS))
    f = np.sqrt(h) / np.sqrt(_CONST**2 + 1.0 + noise_norm**2)

    lm_head = np.zeros((vocab, h))
    for j, cls in enumerate(token_class):
        for prev, nexts in TRANSITIONS.items():
            if cls in nexts:
                lm_head[j, lay.classes.index(prev)] = _CLASS_GAP / f
        allowed = any(cls in nexts for nexts in TRANSITIONS.values())
        bias = CLASS_BIAS.get(cls, 0.0) if allowed else -2 * _CLASS_GAP
        lm_head[j, lay.const_dim] = bias / (_CONST * f)
        lm_head[j, lay.mode_dim] = MODE_GAIN.get(cls, 0.0) / f
    lm_head[:, noise] = rng.normal(0.0, _NOISE_LOGITS / (f * noise_norm), (vocab, n_noise))
    # A yes/no answer follows the newline that opens every reply.  Make the yes/no rows
    # blind to that newline's own identity, so the answer depends on the question and the
    # image (through attention) rather than being the same for every question.
    nl_identity = embed[class_ids["nl"][0], noise]
    nl_identity = nl_identity / np.linalg.norm(nl_identity)
    for j in class_ids["yes"] + class_ids["no"]:
        lm_head[j, noise] -= (lm_head[j, noise] @ nl_identity) * nl_identity

    head_dim = h // TEXT_HEADS
    kv = TEXT_KV_HEADS * head_dim
    # What attention reads after its input norm has norm ~rho (the constant left out).
    rho = f * np.sqrt(1.0 + noise_norm**2)
    # Scores with std ~_ATTN_SHARPNESS: each position looks at a handful of earlier ones,
    # so what it reads changes from step to step instead of averaging out.
    qk_std = np.sqrt(_ATTN_SHARPNESS) / rho
    weights = {
        "model.language_model.embed_tokens.weight": embed,
        "model.language_model.norm.weight": np.ones(h),
        "lm_head.weight": lm_head,
    }
    for layer in range(TEXT_LAYERS):
        q = rng.normal(0.0, qk_std, (h, h))
        k = rng.normal(0.0, qk_std, (kv, h))
        q[:, lay.const_dim] = k[:, lay.const_dim] = 0.0
        # Values read only the zero-mean noise subspace, not the word classes, so an average
        # over many positions carries no fixed offset; entries come out ~1.
        v = np.zeros((kv, h))
        v[:, noise] = rng.normal(0.0, 1.0 / (f * noise_norm), (kv, n_noise))
        o_proj = np.zeros((h, h))
        o_proj[noise, :] = rng.normal(0.0, _ATTN_OUT / np.sqrt(n_noise * h), (n_noise, h))
        if layer == 0:
            # Head 0 has no query, so it attends uniformly: its value slot 0 (1 for mode
            # words, 0 otherwise) averages into the share of mode words in the context.
            q[:head_dim] = 0.0
            v[0] = 0.0
            for cls in MODE_CLASSES:
                v[0, lay.classes.index(cls)] = 1.0 / f
            o_proj[:, :head_dim] = 0.0
            o_proj[:, head_dim] = 0.0
            o_proj[lay.mode_dim, 0] = 1.0
        p = f"model.language_model.layers.{layer}."
        weights |= {
            p + "input_layernorm.weight": np.ones(h),
            p + "post_attention_layernorm.weight": np.ones(h),
            p + "self_attn.q_proj.weight": q,
            p + "self_attn.q_proj.bias": np.zeros(h),
            p + "self_attn.k_proj.weight": k,
            p + "self_attn.k_proj.bias": np.zeros(kv),
            p + "self_attn.v_proj.weight": v,
            p + "self_attn.v_proj.bias": np.zeros(kv),
            p + "self_attn.o_proj.weight": o_proj,
            # The MLP writes nothing: the grammar lives in the embeddings and output layer.
            p + "mlp.gate_proj.weight": rng.normal(0.0, 0.02, (TEXT_INTERMEDIATE, h)),
            p + "mlp.up_proj.weight": rng.normal(0.0, 0.02, (TEXT_INTERMEDIATE, h)),
            p + "mlp.down_proj.weight": np.zeros((h, TEXT_INTERMEDIATE)),
        }
    return weights


def vision_weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    v, inter = VISION_HIDDEN, VISION_INTERMEDIATE
    lay = _Layout()
    merged = v * MERGE * MERGE

    def lin(out_dim: int, in_dim: int) -> np.ndarray:
        return rng.normal(0.0, 1.0 / np.sqrt(in_dim), (out_dim, in_dim))

    patch_in = 3 * TEMPORAL_PATCH * PATCH * PATCH
    # Image tokens enter the language model looking like words of no class: the constant
    # component, and image features of norm ~_IMAGE_FEATURES in the noise subspace.
    out_w = np.zeros((TEXT_HIDDEN, merged))
    out_w[lay.noise] = rng.normal(0.0, _IMAGE_FEATURES / np.sqrt(lay.n_noise * merged),
                                  (lay.n_noise, merged))
    out_b = np.zeros(TEXT_HIDDEN)
    out_b[lay.const_dim] = _CONST
    weights = {
        "model.visual.patch_embed.proj.weight": rng.normal(
            0.0, 1.0 / np.sqrt(patch_in), (v, 3, TEMPORAL_PATCH, PATCH, PATCH)
        ),
        "model.visual.merger.ln_q.weight": np.ones(v, np.float32),
        "model.visual.merger.mlp.0.weight": lin(merged, merged),
        "model.visual.merger.mlp.0.bias": np.zeros(merged, np.float32),
        "model.visual.merger.mlp.2.weight": out_w,
        "model.visual.merger.mlp.2.bias": out_b,
    }
    for block in range(VISION_DEPTH):
        p = f"model.visual.blocks.{block}."
        weights |= {
            p + "norm1.weight": np.ones(v, np.float32),
            p + "norm2.weight": np.ones(v, np.float32),
            p + "attn.qkv.weight": lin(3 * v, v),
            p + "attn.qkv.bias": np.zeros(3 * v, np.float32),
            p + "attn.proj.weight": lin(v, v),
            p + "attn.proj.bias": np.zeros(v, np.float32),
            p + "mlp.gate_proj.weight": lin(inter, v),
            p + "mlp.gate_proj.bias": np.zeros(inter, np.float32),
            p + "mlp.up_proj.weight": lin(inter, v),
            p + "mlp.up_proj.bias": np.zeros(inter, np.float32),
            p + "mlp.down_proj.weight": lin(v, inter),
            p + "mlp.down_proj.bias": np.zeros(v, np.float32),
        }
    return weights


def hf_config(vocab: int, special_ids: dict[str, int]) -> dict:
    from scalecap_ray.smoke.files import qwen2_5_vl_config

    return qwen2_5_vl_config(
        special_ids, vocab=vocab, tie_embeddings=False, rope_theta=ROPE_THETA,
        max_positions=32768, patch=PATCH, merge=MERGE, temporal_patch=TEMPORAL_PATCH,
        text={"hidden": TEXT_HIDDEN, "intermediate": TEXT_INTERMEDIATE, "layers": TEXT_LAYERS,
              "heads": TEXT_HEADS, "kv_heads": TEXT_KV_HEADS},
        vision={"depth": VISION_DEPTH, "hidden": VISION_HIDDEN,
                "intermediate": VISION_INTERMEDIATE, "heads": 1})
