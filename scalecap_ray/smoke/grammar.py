"""The smoke model's vocabulary and grammar: which words exist, which may follow which,
and the tokenizer trained on them (with Qwen2-VL's special tokens and split rule)."""

from __future__ import annotations

import numpy as np

from scalecap_ray import prompts

SEED = 20250624
VOCAB_TARGET = 768  # tokens the tokenizer is trained to (the model pads to a multiple of 64)

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

# The share of "Describe" in the context (high in the instruction prompt P2, which is full
# of worked examples) raises the odds that a new line starts with "Describe": the model
# "follows the prompt" that much.
MODE_CLASSES = ("describe",)
# Logits per unit share of mode words.  Even a context of nothing but instruction lines
# (a share of 1/6) must not lift "Describe" over the class gap, or the grammar breaks.
MODE_GAIN = {"describe": 60.0}


def corpus() -> list[str]:
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


def build_tokenizer():
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
    tok.train_from_iterator(corpus(), trainer=trainer)
    return tok


def class_token_ids(tok) -> dict[str, list[int]]:
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
