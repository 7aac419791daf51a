"""The files around the weights of a tiny Qwen2.5-VL checkpoint built by the project (the
smoke model, the toy model): tokenizer, configs, chat template, image processor config,
and a marker naming the recipe, laid out the way vLLM and transformers read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scalecap_ray.smoke.grammar import CHAT_TEMPLATE, SPECIAL_TOKENS


def dump_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_model_files(out: Path, tok: Any, hf_config: dict, *, patch: int, merge: int,
                      temporal_patch: int, min_pixels: int, max_pixels: int,
                      marker: tuple[str, dict]) -> None:
    """Everything but the weights: `tok` is a `tokenizers.Tokenizer` holding
    `SPECIAL_TOKENS`; `marker` is (file name, contents) of the recipe marker."""
    special_ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    tok.save(str(out / "tokenizer.json"))
    dump_json(out / "config.json", hf_config)
    dump_json(out / "generation_config.json", {
        "bos_token_id": special_ids["<|endoftext|>"],
        "eos_token_id": [special_ids["<|im_end|>"], special_ids["<|endoftext|>"]],
        "pad_token_id": special_ids["<|endoftext|>"],
    })
    dump_json(out / "tokenizer_config.json", {
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
    dump_json(out / "preprocessor_config.json", {
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2_5_VLProcessor",
        "do_resize": True,
        "do_rescale": True,
        "do_normalize": True,
        "do_convert_rgb": True,
        "rescale_factor": 1 / 255,
        "image_mean": IMAGE_MEAN,
        "image_std": IMAGE_STD,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
        "size": {"shortest_edge": min_pixels, "longest_edge": max_pixels},
        "patch_size": patch,
        "temporal_patch_size": temporal_patch,
        "merge_size": merge,
    })
    name, contents = marker
    dump_json(out / name, contents)


def qwen2_5_vl_config(special_ids: dict[str, int], *, vocab: int, text: dict, vision: dict,
                      tie_embeddings: bool, rope_theta: float, max_positions: int,
                      patch: int, merge: int, temporal_patch: int) -> dict:
    """A Qwen2.5-VL `config.json`.  `text`: hidden, intermediate, layers, heads, kv_heads;
    `vision`: depth, hidden, intermediate, heads (the last block attends over the whole
    image, the others in windows, as in the real models)."""
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "torch_dtype": "float32",
        "tie_word_embeddings": tie_embeddings,
        "image_token_id": special_ids["<|image_pad|>"],
        "video_token_id": special_ids["<|video_pad|>"],
        "vision_start_token_id": special_ids["<|vision_start|>"],
        "vision_end_token_id": special_ids["<|vision_end|>"],
        "text_config": {
            "model_type": "qwen2_5_vl_text",
            "vocab_size": vocab,
            "hidden_size": text["hidden"],
            "intermediate_size": text["intermediate"],
            "num_hidden_layers": text["layers"],
            "num_attention_heads": text["heads"],
            "num_key_value_heads": text["kv_heads"],
            "hidden_act": "silu",
            "max_position_embeddings": max_positions,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": rope_theta,
                                "mrope_section": [8, 12, 12]},
            "bos_token_id": special_ids["<|endoftext|>"],
            "eos_token_id": special_ids["<|im_end|>"],
            "tie_word_embeddings": tie_embeddings,
            "torch_dtype": "float32",
        },
        "vision_config": {
            "model_type": "qwen2_5_vl_vision",
            "depth": vision["depth"],
            "hidden_size": vision["hidden"],
            "intermediate_size": vision["intermediate"],
            "num_heads": vision["heads"],
            "out_hidden_size": text["hidden"],
            "patch_size": patch,
            "spatial_merge_size": merge,
            "temporal_patch_size": temporal_patch,
            "window_size": 112,
            "fullatt_block_indexes": [vision["depth"] - 1],
            "in_chans": 3,
            "tokens_per_second": 2,
            "hidden_act": "silu",
        },
    }


# Qwen2-VL's image normalisation (CLIP's mean and std).
IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]
