"""Benchmark 1, serialization: what moving the pipeline's data between processes costs.

In the pipeline each batch crosses a process boundary at every stage (Ray Data hands the
block to the next stage's actor through the object store), and every engine call sends
its requests to the engine actor and gets the results back.  This script records those
payloads for N images (the job's stages run in this process, in the pipeline's batches,
on the simulated engine, which answers at once) and then moves each one the way the
pipeline does, on a fresh local Ray: a block is put into the object store here and read
in an actor; an engine call goes to an actor that returns the recorded results.  It
reports bytes and seconds by kind, beside what an empty actor call costs, so the
serialization share of the pipeline's extra time (benchmark 1) is measured rather than
guessed.  Each payload is moved three times and the fastest counts: the aim is the cost
of the transfer, not the noise of a busy machine.

    .venv/bin/python bench/serialization.py [--images 200] [--model PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from common import model_path, plan_and_rows, save, stage_instance
from engine_bound import SyncSimulated
from images import write_images
from simengine import REFERENCE_COST, CostModel, SimulatedEngine

REPEATS = 3


@dataclass
class Payloads:
    """What crosses a process boundary in the pipeline: each stage's input blocks (and
    the last stage's output, on its way to the writer), and each engine call, recorded
    as the stages call `engine` through this object."""

    engine: object
    blocks: list[pa.Table] = field(default_factory=list)
    calls: list[tuple[list, object, list]] = field(default_factory=list)

    def chat(self, requests, sampling):
        results = self.engine.chat(requests, sampling)
        self.calls.append((list(requests), sampling, results))
        return results


def compact(table: pa.Table) -> pa.Table:
    """A copy holding only its own rows: a slice shares its parent's buffers, and would
    otherwise be measured with all of them."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return pa.ipc.open_stream(sink.getvalue()).read_all()


def record(listing: Path, model: str) -> Payloads:
    """The job's stages over the listing in this process, each stage fed in batches of
    its configured size, on the simulated engine (no time per step)."""
    plan, table = plan_and_rows(listing, model)
    cost = CostModel.load(REFERENCE_COST).scaled(0.0)
    engine = SyncSimulated(SimulatedEngine(plan.engines["vlm"][1].engine_config(), cost))
    payloads = Payloads(engine)
    try:
        _run_in_batches(plan, table, payloads)
    finally:
        engine.close()
    return payloads


def _run_in_batches(plan, table: pa.Table, payloads: Payloads) -> None:
    for stage in plan.stages:
        run = stage_instance(stage, payloads)
        size = stage.settings.batch_size
        outputs = []
        for start in range(0, table.num_rows, size):
            block = compact(table.slice(start, size))
            payloads.blocks.append(block)
            outputs.append(run(block))
        table = pa.concat_tables(outputs)
    payloads.blocks += [compact(table.slice(s, size)) for s in range(0, table.num_rows, size)]


def measure(payloads: Payloads) -> dict:
    """Move every payload as the pipeline does, on a fresh local Ray."""
    import ray

    @ray.remote(num_cpus=0)
    class Peer:
        def __init__(self):
            self.results: list = []

        def keep(self, results: list) -> None:
            self.results = results

        def ping(self) -> None:
            return None

        def read(self, refs: list) -> float:
            start = time.perf_counter()
            ray.get(refs[0])
            return time.perf_counter() - start

        def chat(self, i: int, requests: list, sampling) -> list:
            return self.results[i]

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        peer = Peer.remote()
        ray.get(peer.keep.remote([results for _, _, results in payloads.calls]))
        pings = []
        for _ in range(30):
            start = time.perf_counter()
            ray.get(peer.ping.remote())
            pings.append(time.perf_counter() - start)
        empty = statistics.median(pings[5:])

        block_s = 0.0
        for block in payloads.blocks:
            best = float("inf")
            for _ in range(REPEATS):
                start = time.perf_counter()
                ref = ray.put(block)
                put = time.perf_counter() - start
                best = min(best, put + ray.get(peer.read.remote([ref])))
                del ref
            block_s += best

        call_s = 0.0
        for i, (requests, sampling, _) in enumerate(payloads.calls):
            best = float("inf")
            for _ in range(REPEATS):
                start = time.perf_counter()
                ray.get(peer.chat.remote(i, requests, sampling))
                best = min(best, time.perf_counter() - start)
            call_s += max(best - empty, 0.0)
    finally:
        ray.shutdown()

    mb = 2 ** 20
    call_bytes = sum(len(pickle.dumps((req, res), protocol=5))
                     for req, _, res in payloads.calls)
    return {
        "blocks": {"count": len(payloads.blocks),
                   "mb": round(sum(b.nbytes for b in payloads.blocks) / mb, 2),
                   "seconds": round(block_s, 3)},
        "engine_calls": {"count": len(payloads.calls),
                         "requests": sum(len(req) for req, _, _ in payloads.calls),
                         "mb": round(call_bytes / mb, 2),
                         "seconds": round(call_s, 3)},
        "empty_call_ms": round(empty * 1000, 3),
        "call_overhead_s": round(empty * (len(payloads.calls) + len(payloads.blocks)), 3),
        "total_s": round(block_s + call_s, 3),
    }


def table(r: dict) -> str:
    b, c = r["blocks"], r["engine_calls"]
    return "\n".join([
        f"{r['images']} images: serialization and transfer {r['total_s']:.2f} s in all "
        f"(an empty actor call takes {r['empty_call_ms']:.2f} ms; "
        f"{r['call_overhead_s']:.2f} s for as many calls as hops)", "",
        "| what crosses a process boundary | count | MiB | seconds |", "|---|---|---|---|",
        f"| blocks into each stage and to the writer | {b['count']} | {b['mb']:.1f} | "
        f"{b['seconds']:.2f} |",
        f"| engine calls ({c['requests']} requests, their results back) | {c['count']} | "
        f"{c['mb']:.1f} | {c['seconds']:.2f} |"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--model", help="Model for both roles (default: the smoke model).")
    parser.add_argument("--out", help="Folder for images and results.")
    args = parser.parse_args()
    if args.images < 1:
        parser.error(f"--images must be at least 1, got {args.images}")
    root = Path(args.out or tempfile.mkdtemp(prefix="scalecap-bench-"))
    listing = write_images(args.images, root / "images")
    result = {"images": args.images, **measure(record(listing, model_path(args.model)))}
    save(result, root / "serialization.json")
    print(table(result))


if __name__ == "__main__":
    main()
