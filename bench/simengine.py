"""A simulated engine for the scaling and memory benchmarks: it answers like a model
(parseable captions, instructions, answers) and takes the time a continuous-batching
engine would, by a cost model calibrated on the real CPU engine (bench/calibrate.py;
bench/reference_cost.json by default), without using CPU.

The model: an engine runs steps; a step admits the waiting requests (up to
`max_num_seqs` running), prefills their uncached prompt tokens and decodes one token for
every running sequence, taking `step_s + prefill_s * prefilled + decode_s * running`.
An image's tokens are cached after its first request on a replica (as vLLM's prefix cache
does), except for requests that score their prompt (vLLM computes those in full).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from scalecap_ray.config import Prompts
from scalecap_ray.engine.config import EngineConfig
from scalecap_ray.engine.types import ChatRequest, ChatResult, Sampling, TokenLogprob
from scalecap_ray.prompts import INSTRUCTION_STEM, POSITION_STEM

CHARS_PER_TOKEN = 4
# The cost model the simulated benchmarks run on unless given another: one calibration,
# kept, because the fit moves with the host's CPU speed of the moment (steps of 2.85 to
# 5.53 ms on the same machine, worst fit errors 26-42%), and a simulated GPU engine's
# speed should not.
REFERENCE_COST = Path(__file__).parent / "reference_cost.json"


@dataclass(frozen=True)
class CostModel:
    """Seconds per engine step, per prefilled token and per running sequence; the tokens
    an image adds to a prompt; and how long generated texts are, per kind of request."""

    step_s: float
    prefill_s: float
    decode_s: float
    image_tokens: int = 64
    max_num_seqs: int = 256
    caption_tokens: int = 32
    caption_sentences: int = 3
    question_tokens: int = 12
    answer_tokens: int = 36
    integrate_tokens: int = 48

    @classmethod
    def load(cls, path: str | Path) -> CostModel:
        """The cost model in a `bench/calibrate.py` output file."""
        return cls(**json.loads(Path(path).read_text())["cost"])

    def seconds(self, steps: int, prefilled: int, decoded: int) -> float:
        """What a batch that ran `steps` steps, prefilled `prefilled` tokens and decoded
        `decoded` sequence-steps costs by this model."""
        return self.step_s * steps + self.prefill_s * prefilled + self.decode_s * decoded

    def scaled(self, factor: float) -> CostModel:
        """The same engine `factor` times slower (a bigger model, a slower device)."""
        return CostModel(**{**asdict(self), "step_s": self.step_s * factor,
                            "prefill_s": self.prefill_s * factor,
                            "decode_s": self.decode_s * factor})


@dataclass
class _Job:
    prefill: int
    decode: int
    done: asyncio.Future


class SimulatedEngine:
    """An engine for `run_plan(engine_factory=partial(SimulatedEngine, cost=...))`."""

    def __init__(self, cfg: EngineConfig, cost: CostModel, prompts: Prompts | None = None):
        self.cfg, self.cost, self.max_model_len = cfg, cost, 32768
        self.engine_args = {"simulated": asdict(cost)}
        p = prompts or Prompts()
        self._caption, self._questions = p.caption, p.questions.split("{}")[0]
        self._seen: set[str] = set()
        self._waiting: list[_Job] = []
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._objects = 0

    async def capabilities(self) -> dict[str, bool]:
        return {"prompt_logprobs": True, "logprobs": True}

    async def chat(self, requests: Sequence[ChatRequest], sampling: Sampling
                   ) -> list[ChatResult]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # the engine loop runs on the caller's event loop
            self._loop, self._wake = loop, asyncio.Event()
            self._task = loop.create_task(self._run())
        results = [self._reply(r, sampling) for r in requests]
        jobs = []
        for result in results:
            job = _Job(result.prompt_tokens - result.cached_tokens, result.output_tokens,
                       loop.create_future())
            self._waiting.append(job)
            jobs.append(job.done)
        self._wake.set()
        await asyncio.gather(*jobs)
        return results

    async def _run(self) -> None:
        """The engine loop: one simulated step at a time while work is there."""
        running: list[_Job] = []
        c = self.cost
        while True:
            if not running and not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            admitted = self._waiting[:max(c.max_num_seqs - len(running), 0)]
            del self._waiting[:len(admitted)]
            prefilled = sum(j.prefill for j in admitted)
            running += admitted
            await asyncio.sleep(c.seconds(1, prefilled, len(running)))
            for job in running:
                job.decode -= 1
            for job in [j for j in running if j.decode <= 0]:
                job.done.set_result(None)
            running = [j for j in running if j.decode > 0]

    def _prompt_tokens(self, req: ChatRequest, scoring: bool) -> tuple[int, int]:
        text = len(req.prompt) + len(req.assistant or "") + len(req.system or "")
        tokens = math.ceil(text / CHARS_PER_TOKEN) + 8  # + the chat template's own
        if req.image is None:
            return tokens, 0
        cached = 0
        if req.image_key in self._seen and not scoring:
            cached = self.cost.image_tokens
        self._seen.add(req.image_key)
        return tokens + self.cost.image_tokens, cached

    def _reply(self, req: ChatRequest, sampling: Sampling) -> ChatResult:
        c = self.cost
        scoring = req.assistant is not None
        prompt, cached = self._prompt_tokens(req, scoring)
        if scoring:  # every word of the sentence likelier with the image than without
            p = 0.9 if req.image is not None else 0.3
            spans = [TokenLogprob(i, i + 1, math.log(p))
                     for i, ch in enumerate(req.assistant) if ch != " "]
            return ChatResult(prompt_tokens=prompt, output_tokens=1,
                              assistant_logprobs=spans)
        if sampling.first_token_logprobs:
            return ChatResult(text="Yes", prompt_tokens=prompt, cached_tokens=cached,
                              output_tokens=1, first_token_logprobs={
                                  k: math.log(0.8 if k.strip().lower() == "yes" else 0.1)
                                  for k in sampling.first_token_logprobs})
        if req.image is not None and req.prompt.startswith((INSTRUCTION_STEM, POSITION_STEM)):
            text, out = _words("It is small and red, near the centre", c.answer_tokens), \
                c.answer_tokens
        elif req.image is not None:
            text = " ".join(f"There is a thing number {i} in the picture."
                            for i in range(c.caption_sentences))
            out = c.caption_tokens
        elif req.prompt.startswith(self._questions):
            self._objects += 1
            text, out = f"{INSTRUCTION_STEM} the thing number {self._objects}.", \
                c.question_tokens
        else:
            text, out = _words("The picture shows things", c.integrate_tokens), \
                c.integrate_tokens
        return ChatResult(text=text, prompt_tokens=prompt, cached_tokens=cached,
                          output_tokens=out, finish_reason="stop")

    def shutdown(self) -> None:
        pass


def _words(seed: str, tokens: int) -> str:
    """About `tokens` tokens of text, a sentence ending in a period."""
    words = seed.split()
    return " ".join(words[i % len(words)] for i in range(max(tokens * 3 // 4, 1))) + "."


def engine_by_seed(cfg: EngineConfig, costs: dict[int, CostModel],
                   prompts: Prompts | None = None) -> SimulatedEngine:
    """A simulated engine whose cost model is picked by the engine's seed: how the split
    benchmark makes the LLM (given seed 1, which also makes it an engine of its own)
    slower than the VLM while both roles load the same checkpoint."""
    return SimulatedEngine(cfg, costs[cfg.seed], prompts)
