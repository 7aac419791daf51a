"""Running a plan: engines up, input streamed through the stages into Parquet part
files, engines down (also when the run fails).

A rerun into the same output resumes: rows whose id is already written are skipped, so a
run killed at any point and started again writes every input row exactly once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from scalecap_ray.config import StageSettings
from scalecap_ray.engine.pool import EnginePool
from scalecap_ray.io.dedupe import hash_ids, prepare, tally, todo_count
from scalecap_ray.io.manifest import build_manifest, write_manifest
from scalecap_ray.io.output import OutputFolder, now, write_part
from scalecap_ray.io.sources import InputPlan, discover, id_partitions, image_ids, read_input
from scalecap_ray.pipeline import RECORD_FIELDS, RECORD_TYPE, Plan, retry_policy
from scalecap_ray.resources.cluster import ClusterShape
from scalecap_ray.resources.placement import Placement, PlacementError
from scalecap_ray.stages.batch import BOOKKEEPING, USAGE, USAGE_FIELDS

logger = logging.getLogger(__name__)

# Columns that exist only to move data between steps.
INTERNAL_COLUMNS = ("image_bytes", "image_data", "order")
# Reading, parsing and writing are light: they reserve little CPU, so they never wait
# behind engines and stage actors on a small machine.
LIGHT_TASK_CPUS = 0.1


@dataclass(frozen=True)
class RunResult:
    output: str
    rows_written: int
    rows_skipped: int  # already in the output from earlier runs
    manifest: dict = field(default_factory=dict)


def scalecap_records(table: pa.Table) -> pa.Array:
    """The seed's record per row, from whatever the row's stages produced."""
    columns = {k: table.column(k).to_pylist() for k in RECORD_FIELDS}
    records = []
    for i in range(table.num_rows):
        rec = {k: columns[k][i] for k in RECORD_FIELDS}
        records.append({k: (v if v is not None or RECORD_FIELDS[k] == pa.string() else [])
                        for k, v in rec.items()})
    return pa.array(records, type=RECORD_TYPE)


def finalize(batch: pa.Table, job: str = "caption") -> pa.Table:
    """Drop the internal columns, add the ScaleCap record (scalecap job) and per-row token
    totals over all stages, and put the bookkeeping columns last."""
    table = batch.select([c for c in batch.column_names if c not in INTERNAL_COLUMNS])
    if job == "scalecap":
        table = table.append_column(pa.field("scalecap_record", RECORD_TYPE),
                                    scalecap_records(table))
    usage = table.column(USAGE).to_pylist()
    for name in USAGE_FIELDS:
        totals = [sum(entry[name] for entry in (u or [])) for u in usage]
        table = table.append_column(pa.field(name, pa.int64()), pa.array(totals, pa.int64()))
    last = [*BOOKKEEPING, *USAGE_FIELDS]
    return table.select([c for c in table.column_names if c not in last] + last)


def _compute(settings: StageSettings):
    import ray.data

    c = settings.concurrency
    if isinstance(c, tuple):
        return ray.data.ActorPoolStrategy(min_size=c[0], max_size=c[1])
    return ray.data.ActorPoolStrategy(size=c)


def input_rows(plan: Plan, source: InputPlan, done_ids: list[str]) -> tuple[Any, int]:
    """The lazy dataset of input rows still to do (duplicates marked), and how many there
    are.  Finding duplicate ids and counting takes one pass over the ids first, except for
    image folders, whose paths are unique and whose ids are known from the listing."""
    cfg = plan.config
    done = hash_ids(done_ids)
    ds = read_input(source, cfg.input, retry_policy(cfg), num_cpus=LIGHT_TASK_CPUS)
    if cfg.input.limit is not None:
        ds = ds.limit(cfg.input.limit)
    if source.kind == "images":
        firsts, todo = {}, todo_count(image_ids(source, cfg.input.limit), done)
    else:
        firsts, todo = tally(ds, done, num_cpus=LIGHT_TASK_CPUS,
                             num_partitions=id_partitions(source, retry_policy(cfg)))
    if firsts:
        logger.info("%d id(s) occur more than once; later occurrences become error rows",
                    len(firsts))
    ds = ds.map_batches(prepare, batch_format="pyarrow", num_cpus=LIGHT_TASK_CPUS,
                        fn_kwargs={"firsts": firsts, "done": done, "files": source.files})
    # A stage hands a block on only when it has done all of it: blocks of one (smallest)
    # stage batch keep rows streaming through the stages instead of moving in big steps.
    block = min(s.settings.batch_size for s in plan.stages if s.role is not None)
    return ds.repartition(target_num_rows_per_block=block), todo


def through_stages(plan: Plan, ds):
    """`ds` through every stage of the plan, then `finalize` (lazy)."""
    for stage in plan.stages:
        kwargs = dict(stage.kwargs)
        if stage.role is not None:
            kwargs["engine"] = plan.engines[stage.role][0]
        ds = ds.map_batches(
            stage.cls,
            fn_constructor_kwargs=kwargs,
            batch_size=stage.settings.batch_size,
            batch_format="pyarrow",
            compute=_compute(stage.settings),
            num_cpus=stage.settings.num_cpus,
            resources=stage.settings.resources or None,
        )
    return ds.map_batches(finalize, fn_kwargs={"job": plan.job}, batch_format="pyarrow",
                          num_cpus=LIGHT_TASK_CPUS)


def check_cluster(plan: Plan, cluster: ClusterShape | None = None) -> Placement:
    """The plan's placement on `cluster` (default: the Ray cluster this process is joined
    to); raises PlacementError, with the whole plan and every problem, when it cannot run."""
    placement = plan.placement(cluster or ClusterShape.from_ray())
    if not placement.ok:
        raise PlacementError(placement.describe())
    for line in placement.describe().splitlines():  # one line per engine and stage
        logger.info("%s", line)
    return placement


def engine_pools(plan: Plan, placement: Placement, factory=None) -> list[EnginePool]:
    """One pool per distinct engine, placed as `placement` says; the ones with the most
    GPUs per replica first, so that small replicas cannot fragment the nodes that a
    tensor-parallel group needs whole."""
    pools = []
    for shape in sorted(placement.engines, key=lambda e: -e.gpus_per_replica):
        spec, dep = plan.engines[shape.roles[0]]
        cfg = dep.engine_config(shape.placement.num_gpus)
        pools.append(EnginePool(spec, cfg, shape.placement, factory=factory,
                                min_replicas=dep.replica_range[0]))
    return pools


class CapabilityError(RuntimeError):
    """An engine cannot do what the job asks of it."""


def check_capabilities(plan: Plan, capabilities: dict[tuple[str, ...], dict[str, bool]]
                       ) -> Plan:
    """The plan, or (with `verify_fallback`) the same plan verifying by yes/no questions,
    when the VLM gives no prompt log-probabilities; raises CapabilityError otherwise."""
    cfg = plan.config
    if plan.job != "scalecap" or cfg.verify_mode != "contrastive":
        return plan
    spec, dep = plan.engines["vlm"]
    if capabilities[spec.names].get("prompt_logprobs"):
        return plan
    where = dep.api_url or dep.model
    if not cfg.verify_fallback:
        raise CapabilityError(
            f"verify_mode contrastive needs prompt log-probabilities, which {where} does "
            "not return (vLLM's server does; OpenAI's does not): set verify_mode=yes_no, "
            "or verify_fallback=true to switch when this happens")
    logger.warning("%s returns no prompt log-probabilities: verifying with yes/no "
                   "questions (verify_fallback)", where)
    from scalecap_ray.pipeline import plan_scalecap_job

    fallback = cfg.model_copy(update={"verify_mode": "yes_no"})
    return replace(plan_scalecap_job(fallback, run_id=plan.run_id), engines=plan.engines)


def run_plan(plan: Plan, input_path: str, output_dir: str, *, overwrite: bool = False,
             force: bool = False, address: str | None = None,
             cluster: ClusterShape | None = None, engine_factory=None,
             progress: bool = True) -> RunResult:
    """Run the job: check the input and the output folder (before any model work), join
    Ray (`address`, else RAY_ADDRESS, else a local Ray) unless already joined, check that
    the plan fits the cluster (or `cluster`, the size an autoscaler grows it to), start the
    engines (`engine_factory`: a stand-in for vLLM, for tests), stream the rows into part
    files of `output.rows_per_file` rows (Ray Data's progress bars on unless `progress`
    is false), stop the engines, and write the run's manifest."""
    import ray
    import ray.data

    started, clock = now(), time.monotonic()
    retry = retry_policy(plan.config)
    source = discover(input_path, retry)
    out = OutputFolder(output_dir, retry)
    config_dump = plan.config.model_dump(mode="json")
    out.check_run(plan.job, plan.payload, config_dump, overwrite=overwrite, force=force)
    if not ray.is_initialized():
        ray.init(address=address)
    ray.data.DataContext.get_current().enable_progress_bars = progress
    placement = check_cluster(plan, cluster)
    pools = engine_pools(plan, placement, engine_factory)
    written, timing = 0, None
    try:
        done = out.start_run(plan.job, plan.payload, config_dump, plan.run_id,
                             overwrite=overwrite, force=force)
        if done:
            logger.info("resuming %s: %d row(s) already written are skipped", output_dir,
                        len(done))
        else:
            # The models load while the ids are checked: a fresh run has rows to do.
            for pool in pools:
                pool.launch()
        rows, todo = input_rows(plan, source, done)
        logger.info("%d input row(s) to process", todo)
        if todo:
            written, timing = _stream(plan, rows, pools, output_dir, retry)
    finally:
        for pool in pools:
            pool.shutdown()
    out.finish_run(plan.run_id, written)
    manifest = build_manifest(
        out, job=plan.job, run_id=plan.run_id, input_path=input_path, config=config_dump,
        started=started, finished=now(), seconds=time.monotonic() - clock, todo=todo,
        written=written, skipped=len(done), timing=timing)
    write_manifest(out, manifest)
    return RunResult(output_dir, written, len(done), manifest)


def _stream(plan: Plan, rows, pools: list[EnginePool], output_dir: str, retry
            ) -> tuple[int, dict]:
    """Engines up (launched before the pass over the ids, in a fresh run), rows through
    the stages into part files; the rows written and where the time went (engine
    start-up from launch, streaming, each engine's busy time)."""
    for pool in pools:
        pool.launch()
    capabilities = {pool.spec.names: pool.wait_ready()[0]["capabilities"] for pool in pools}
    ready = time.monotonic()
    plan = check_capabilities(plan, capabilities)
    ds = through_stages(plan, rows).map_batches(
        write_part, batch_size=plan.config.output.rows_per_file, batch_format="pyarrow",
        num_cpus=LIGHT_TASK_CPUS,
        fn_kwargs={"output": output_dir, "run_id": plan.run_id, "retry": retry,
                   "row_group_rows": plan.config.output.row_group_rows})
    written = 0
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        written += sum(batch.column("rows").to_pylist())
    launched = min(pool.launched_at for pool in pools)
    return written, {"engine_startup_s": round(ready - launched, 3),
                     "streaming_s": round(time.monotonic() - ready, 3),
                     "engines": {engine_label(plan, pool.spec.names): pool.stats()
                                 for pool in pools}}


def engine_label(plan: Plan, names: tuple[str, ...]) -> str:
    """The roles an engine serves, e.g. `vlm+llm` when both use one model."""
    return "+".join(role for role, (spec, _) in plan.engines.items() if spec.names == names)
