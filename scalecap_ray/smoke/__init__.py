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
from pathlib import Path

import numpy as np

from scalecap_ray.smoke.files import write_model_files
from scalecap_ray.smoke.grammar import (
    CHAT_TEMPLATE,
    SEED,
    SPECIAL_TOKENS,
    WORD_CLASSES,
    build_tokenizer,
    class_token_ids,
)
from scalecap_ray.smoke.weights import (
    MAX_PIXELS,
    MERGE,
    MIN_PIXELS,
    PATCH,
    TEMPORAL_PATCH,
    hf_config,
    text_weights,
    vision_weights,
)

RECIPE_VERSION = "2"

__all__ = ["CHAT_TEMPLATE", "RECIPE_VERSION", "WORD_CLASSES", "build_smoke_model",
           "default_cache_dir", "ensure_smoke_model", "fingerprint"]


def _write_files(out: Path) -> None:
    from safetensors.numpy import save_file

    tok = build_tokenizer()
    class_ids = class_token_ids(tok)
    n_tokens = tok.get_vocab_size()
    vocab = -(-n_tokens // 64) * 64
    special_ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}

    rng = np.random.default_rng(SEED)
    weights = text_weights(rng, vocab, class_ids) | vision_weights(rng)
    save_file(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sorted(weights.items())},
        str(out / "model.safetensors"),
        metadata={"format": "pt"},
    )
    write_model_files(out, tok, hf_config(vocab, special_ids), patch=PATCH, merge=MERGE,
                      temporal_patch=TEMPORAL_PATCH, min_pixels=MIN_PIXELS,
                      max_pixels=MAX_PIXELS, marker=("scalecap_smoke.json", {
                          "recipe_version": RECIPE_VERSION, "seed": SEED}))


def build_smoke_model(out_dir: str | os.PathLike) -> Path:
    """Write the smoke checkpoint into `out_dir` (created; existing files are replaced)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_files(out)
    for f in out.iterdir():
        f.chmod(0o644)  # safetensors writes its file owner-only; the cache is shared
    out.chmod(0o755)
    return out


def default_cache_dir() -> Path:
    base = os.environ.get("SCALECAP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "scalecap-ray"
    )
    return Path(base) / f"smoke-model-v{RECIPE_VERSION}"


def _is_current(model_dir: Path) -> bool:
    marker = model_dir / "scalecap_smoke.json"
    if not marker.is_file():
        return False
    return json.loads(marker.read_text()).get("recipe_version") == RECIPE_VERSION


def ensure_smoke_model(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the cached smoke model, building it on first use.  The model is built in a
    staging folder and renamed into place, so a reader never sees half a model, and
    processes racing to build it all end up with one finished copy."""
    target = Path(cache_dir) if cache_dir else default_cache_dir()
    if _is_current(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".smoke-build-"))
    try:
        build_smoke_model(staging)
        if target.exists() and not _is_current(target):
            shutil.rmtree(target)  # an older recipe
        try:
            os.replace(staging, target)
        except OSError:
            if not _is_current(target):  # not just another process finishing first
                raise
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
