"""A tiny Qwen2.5-VL checkpoint built offline, for tests and demos on machines without a GPU.

The weights are random except where we shape them: the token embeddings and the output
layer implement a small word grammar, so greedy decoding writes sentences ("The red cup
sits on the table."), instruction lines ("Describe more details about the shelf.") and
yes/no answers instead of the newline soup a random model produces.  Attention layers are
random and write into a separate "noise" subspace that the output layer reads to break
ties between words of the same class: that is what makes the text depend on the image and
the context, so captions differ between images and the contrastive verifier sees real
probability differences with and without the image.

Everything is generated from a fixed seed with numpy and the `tokenizers` trainer, so two
builds give byte-identical files.  `RECIPE_VERSION` keys the on-disk cache; bump it when
anything here changes the output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalecap_ray import prompts

RECIPE_VERSION = "1"
SEED = 20250624

# Qwen2-VL's special tokens; they take ids 0..13 in our vocabulary.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen2's pre-tokenizer split rule (published in its tokenizer.json).
_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Word classes of the grammar and the tokens in each.  Every entry must come out of the
# trained tokenizer as exactly one token (checked at build time).
WORD_CLASSES: dict[str, list[str]] = {
    "nl": ["\n"],
    "start": ["The", "A"],
    "cap": [" The", " A"],
    "adj": [" red", " small", " large", " wooden", " white", " black", " green", " blue",
            " old", " bright", " round", " tall"],
    "subj": [" cup", " dog", " cat", " man", " woman", " car", " tree", " lamp", " bird",
             " boat", " chair", " book", " clock", " flower", " sign", " bag"],
    "verb": [" is", " sits", " stands", " rests", " lies", " hangs"],
    "prep": [" on", " near", " beside", " under", " behind", " above"],
    "det": [" the", " a"],
    "place": [" table", " floor", " wall", " window", " road", " grass", " shelf", " bench",
              " door", " street", " sky", " water"],
    "period": ["."],
    "describe": ["Describe"],
    "more": [" more"],
    "details": [" details"],
    "about": [" about"],
    "yes": ["yes", "Yes"],
    "no": ["no", "No"],
    "eos": ["<|im_end|>"],
}

# Which classes may follow which.  "other" covers every token outside the grammar.
TRANSITIONS: dict[str, list[str]] = {
    "nl": ["start", "describe", "yes", "no"],
    "start": ["adj", "subj"],
    "cap": ["adj", "subj"],
    "adj": ["subj"],
    "subj": ["verb"],
    "verb": ["prep"],
    "prep": ["det"],
    "det": ["place"],
    "place": ["period"],
    "period": ["cap", "nl", "eos"],
    "describe": ["more"],
    "more": ["details"],
    "details": ["about"],
    "about": ["det"],
    "yes": ["period"],
    "no": ["period"],
    "eos": ["nl"],
    "other": ["start", "describe"],
}

# Output-layer bias per class, in logits.  Sentences end with a newline more often than
# not (so instruction lines can start), yes/no stay in the running after a newline (so
# grounding questions get a real P(yes)) without starting most replies.
CLASS_BIAS: dict[str, float] = {
    "yes": -1.0, "no": -1.0, "eos": -0.3, "nl": 0.0, "describe": -1.5,
}

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
VOCAB_TARGET = 768

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


# Classes whose words make up the instruction stem.  Their share of the context (high in
# the instruction prompt P2, which is full of worked examples) raises the odds that a new
# line starts with "Describe": the model "follows the prompt" that much.
MODE_CLASSES = ("describe", "more", "details", "about")
# Logits per unit share of mode words: instruction lines, and lines that follow them.
MODE_GAIN = {"describe": 30.0, "nl": 6.0}


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


def _corpus() -> list[str]:
    """Training text for the tokenizer: the grammar's words often, and the method's prompts."""
    rng = np.random.default_rng(SEED)
    words = [w for cls, ws in WORD_CLASSES.items() if cls != "eos" for w in ws]
    lines = []
    for _ in range(400):
        picked = rng.permutation(len(words))[:12]
        lines.append("".join(words[i] for i in picked))
    templates = [
        prompts.CAPTION_PROMPT,
        prompts.QUESTIONS_PROMPT,
        prompts.OBJECT_SUMMARY_PROMPT,
        prompts.POSITION_SUMMARY_PROMPT,
        prompts.INTEGRATE_PROMPT,
        prompts.SENTENCE_GROUNDING_PROMPT,
        prompts.ANSWER_GROUNDING_PROMPT,
        "You are a helpful assistant.",
        "Details about the table: Position about the shelf: Sentence: 0123456789",
    ]
    return lines + templates * 20


def _build_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_TARGET,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok


def _class_token_ids(tok) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {}
    for cls, words in WORD_CLASSES.items():
        ids[cls] = []
        for word in words:
            enc = tok.encode(word, add_special_tokens=False).ids
            if len(enc) != 1:
                raise RuntimeError(
                    f"smoke model: grammar word {word!r} is not a single token: {enc}")
            ids[cls].append(enc[0])
    return ids


def _text_weights(rng: np.random.Generator, vocab: int, class_ids: dict[str, list[int]]):
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


def _vision_weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
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


def _config(vocab: int, special_ids: dict[str, int]) -> dict:
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "torch_dtype": "float32",
        "tie_word_embeddings": False,
        "image_token_id": special_ids["<|image_pad|>"],
        "video_token_id": special_ids["<|video_pad|>"],
        "vision_start_token_id": special_ids["<|vision_start|>"],
        "vision_end_token_id": special_ids["<|vision_end|>"],
        "text_config": {
            "model_type": "qwen2_5_vl_text",
            "vocab_size": vocab,
            "hidden_size": TEXT_HIDDEN,
            "intermediate_size": TEXT_INTERMEDIATE,
            "num_hidden_layers": TEXT_LAYERS,
            "num_attention_heads": TEXT_HEADS,
            "num_key_value_heads": TEXT_KV_HEADS,
            "hidden_act": "silu",
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA,
                                "mrope_section": [8, 12, 12]},
            "bos_token_id": special_ids["<|endoftext|>"],
            "eos_token_id": special_ids["<|im_end|>"],
            "tie_word_embeddings": False,
            "torch_dtype": "float32",
        },
        "vision_config": {
            "model_type": "qwen2_5_vl_vision",
            "depth": VISION_DEPTH,
            "hidden_size": VISION_HIDDEN,
            "intermediate_size": VISION_INTERMEDIATE,
            "num_heads": 1,
            "out_hidden_size": TEXT_HIDDEN,
            "patch_size": PATCH,
            "spatial_merge_size": MERGE,
            "temporal_patch_size": TEMPORAL_PATCH,
            "window_size": 112,
            "fullatt_block_indexes": [VISION_DEPTH - 1],
            "in_chans": 3,
            "tokens_per_second": 2,
            "hidden_act": "silu",
        },
    }


# Qwen2-VL's chat format: a default system turn, images as a vision-start/pad/end triple
# (vLLM expands the pad to one token per merged patch), every turn closed by <|im_end|>.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] in ('image', 'image_url', 'image_pil') %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _write_files(out: Path) -> None:
    from safetensors.numpy import save_file

    tok = _build_tokenizer()
    class_ids = _class_token_ids(tok)
    n_tokens = tok.get_vocab_size()
    vocab = -(-n_tokens // 64) * 64
    special_ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}

    rng = np.random.default_rng(SEED)
    weights = _text_weights(rng, vocab, class_ids) | _vision_weights(rng)
    save_file(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sorted(weights.items())},
        str(out / "model.safetensors"),
        metadata={"format": "pt"},
    )
    tok.save(str(out / "tokenizer.json"))
    _dump(out / "config.json", _config(vocab, special_ids))
    _dump(out / "generation_config.json", {
        "bos_token_id": special_ids["<|endoftext|>"],
        "eos_token_id": [special_ids["<|im_end|>"], special_ids["<|endoftext|>"]],
        "pad_token_id": special_ids["<|endoftext|>"],
    })
    _dump(out / "tokenizer_config.json", {
        "tokenizer_class": "Qwen2Tokenizer",
        "model_max_length": 32768,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "additional_special_tokens": SPECIAL_TOKENS[1:],
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
    })
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    _dump(out / "preprocessor_config.json", {
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2_5_VLProcessor",
        "do_resize": True,
        "do_rescale": True,
        "do_normalize": True,
        "do_convert_rgb": True,
        "rescale_factor": 1 / 255,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "min_pixels": MIN_PIXELS,
        "max_pixels": MAX_PIXELS,
        "size": {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS},
        "patch_size": PATCH,
        "temporal_patch_size": TEMPORAL_PATCH,
        "merge_size": MERGE,
    })
    _dump(out / "scalecap_smoke.json", {"recipe_version": RECIPE_VERSION, "seed": SEED})


def _dump(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def build_smoke_model(out_dir: str | os.PathLike) -> Path:
    """Write the smoke checkpoint into `out_dir` (created; existing files are replaced)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Build beside the target and move in, so a crash never leaves a half-written model
    # that a later run would take for a finished one.
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".smoke-") as tmp:
        _write_files(Path(tmp))
        for f in sorted(Path(tmp).iterdir()):
            os.replace(f, out / f.name)
    return out


def default_cache_dir() -> Path:
    base = os.environ.get("SCALECAP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "scalecap-ray"
    )
    return Path(base) / f"smoke-model-v{RECIPE_VERSION}"


def ensure_smoke_model(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the cached smoke model, building it on first use."""
    target = Path(cache_dir) if cache_dir else default_cache_dir()
    marker = target / "scalecap_smoke.json"
    if marker.exists() and json.loads(marker.read_text()).get("recipe_version") == RECIPE_VERSION:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".smoke-build-"))
    try:
        build_smoke_model(staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def fingerprint(model_dir: str | os.PathLike) -> str:
    """SHA-256 over the model's files, for determinism checks."""
    digest = hashlib.sha256()
    for f in sorted(Path(model_dir).iterdir()):
        if f.is_file():
            digest.update(f.name.encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()
