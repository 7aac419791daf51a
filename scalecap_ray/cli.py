"""Command line: `scalecap-ray run|caption|plan|eval|... ` (also `python -m scalecap_ray`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from scalecap_ray.config import ScaleCapConfig, load_config


def _config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (see docs/configuration.md).")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="Override one config field, e.g. --set vlm.model=/models/x "
                        "--set llm.tensor_parallel_size=4 (repeatable).")
    p.add_argument("--smoke", action="store_true",
                   help="Use the built-in tiny random-weight model for every role (CPU tests "
                        "and demos; its text is meaningless).")
    p.add_argument("--toy", action="store_true",
                   help="Use the toy model for every role: a tiny Qwen2.5-VL the project "
                        "trained on its toy world (see `toy-scenes`); it captions that world "
                        "for real, on a CPU.")
    p.add_argument("--backend", choices=["vllm", "openai"],
                   help="Engine backend of both models: vllm (engines in Ray actors) or "
                        "openai (an OpenAI-compatible API: also set vlm.api_url, "
                        "vlm.model_name, llm.api_url, llm.model_name).")


def _cluster_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a "
                                     "local Ray started for this run).")
    p.add_argument("--cluster-resources", metavar="JSON",
                   help="Check the placement against this cluster description (JSON text or "
                        "a file; see docs/cluster.md) instead of the cluster's nodes now, "
                        "e.g. the size an autoscaler grows it to.")


def _job_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True,
                   help="JSONL/JSON, Parquet or CSV file naming images (or holding their "
                        "bytes), or a folder of images; a local path or an s3://, gs:// or "
                        "http(s):// URI.")
    p.add_argument("--output", required=True,
                   help="Folder (local or s3://, gs://) for the Parquet output. An existing "
                        "output is resumed: rows already written are skipped.")
    p.add_argument("--overwrite", action="store_true",
                   help="Delete what earlier runs wrote to --output and start fresh.")
    p.add_argument("--force", action="store_true",
                   help="Resume even if --output was written with another configuration.")
    _config_arguments(p)
    p.add_argument("--limit", type=int, help="Process only the first N input rows.")
    p.add_argument("--image-key", help="Input field holding the image path (default: image).")
    p.add_argument("--id-key", help="Input field holding a row id (default: hash of the path).")
    _cluster_arguments(p)
    p.add_argument("--quiet", action="store_true",
                   help="No progress bars (Ray Data's, one per stage, are on by default).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scalecap-ray", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="The ScaleCap pipeline: dense, verified captions.")
    _job_arguments(run)

    cap = sub.add_parser("caption", help="Plain captions: one VLM request per image.")
    _job_arguments(cap)
    cap.add_argument("--prompt", help="Caption prompt (default: the ScaleCap P1 prompt).")
    cap.add_argument("--output-key", default="caption", help="Output column (default: caption).")

    plan = sub.add_parser("plan", help="Show where engines and stage actors will run, and "
                          "reject configs the cluster cannot run; starts no model.")
    _config_arguments(plan)
    plan.add_argument("--job", choices=["run", "caption"], default="run",
                      help="Which job to plan (default: run, the ScaleCap pipeline).")
    plan.add_argument("--profile", metavar="MANIFEST",
                      help="A pilot run's _manifest.json (or its output folder): also suggest "
                           "how many replicas each engine should get on this cluster, from "
                           "how long each engine was busy per image.")
    _cluster_arguments(plan)

    exp = sub.add_parser("export", help="Write an output's rows as JSONL records.")
    exp.add_argument("output", help="A run's output folder.")
    exp.add_argument("--format", default="jsonl", choices=["jsonl"], help="Record format.")
    exp.add_argument("--out", help="File to write (default: standard output).")
    exp.add_argument("--no-errors", action="store_true", help="Leave failed rows out.")

    rep = sub.add_parser("report", help="Write an HTML page of an output: images, captions, "
                         "what each stage kept, errors, run summary.")
    rep.add_argument("output", help="A run's output folder.")
    rep.add_argument("--limit", type=int, help="Show only the first N rows (failed last).")
    rep.add_argument("--out", help="File to write (default: OUTPUT/_report.html).")

    show = sub.add_parser("config", help="Print the resolved configuration (YAML) and exit.")
    show.add_argument("--config", help="YAML config file.")
    show.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="Override one config field (repeatable).")

    smoke = sub.add_parser("smoke-model", help="Build the tiny random-weight test model.")
    smoke.add_argument("dir", help="Folder to write the checkpoint into.")

    scenes = sub.add_parser("toy-scenes", help="Draw scenes of the toy world: images, an "
                            "input JSONL for `run` and their truth for `eval`.")
    scenes.add_argument("--seed", type=int, required=True, help="Scenes are the same for the "
                        "same seed (the toy model never saw seeds other than its own).")
    scenes.add_argument("--count", type=int, required=True, help="How many scenes.")
    scenes.add_argument("--out", required=True, help="Folder to write into.")

    toy = sub.add_parser("toy-model", help="Train the toy model (about 30 minutes on two "
                         "CPU cores; the trained one ships with the package).")
    toy.add_argument("dir", help="Folder to write the checkpoint into.")

    ev = sub.add_parser("eval", help="Score an output against the toy world's truth: CHAIR, "
                        "object recall and attribute facts of each caption, and what the "
                        "checks dropped.")
    ev.add_argument("output", help="A run's output folder.")
    ev.add_argument("--truth", required=True, help="The truth JSONL of `toy-scenes`.")
    ev.add_argument("--json", help="Also write the full result as JSON to this file.")
    return parser


def _toy_scenes(args: argparse.Namespace) -> int:
    from scalecap_ray.toy.evaluate import write_scenes

    if args.count < 1:
        print("scalecap-ray toy-scenes: --count must be at least 1", file=sys.stderr)
        return 2
    paths = write_scenes(args.out, args.seed, args.count)
    print(f"{args.count} scene(s): input {paths['input']}, truth {paths['truth']}")
    return 0


def _toy_model(args: argparse.Namespace) -> int:
    from scalecap_ray.toy.checkpoint import train_toy_model

    print(train_toy_model(args.dir))
    return 0


def _eval(args: argparse.Namespace) -> int:
    import json

    from scalecap_ray.toy.evaluate import evaluate, report_lines

    try:
        result = evaluate(_local(args.output), args.truth)
    except (ValueError, OSError) as exc:
        print(f"scalecap-ray eval: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report_lines(result)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


# Commands that need no job configuration.
TOOLS = {"toy-scenes": _toy_scenes, "toy-model": _toy_model, "eval": _eval}


def resolve_config(args: argparse.Namespace) -> ScaleCapConfig:
    """The job config from --config, the shortcut flags and --set (which win)."""
    overrides: list[str] = []
    if getattr(args, "smoke", False) and getattr(args, "toy", False):
        raise ValueError("--smoke and --toy both pick the model: give one")
    if getattr(args, "smoke", False):
        from scalecap_ray.smoke import ensure_smoke_model

        path = ensure_smoke_model()
        overrides += [f"vlm.model={path}", f"llm.model={path}"]
    if getattr(args, "toy", False):
        from scalecap_ray.toy import toy_model_dir

        path = toy_model_dir()
        overrides += [f"vlm.model={path}", f"llm.model={path}"]
    for flag, key in (("limit", "input.limit"), ("image_key", "input.image_key"),
                      ("id_key", "input.id_key"), ("backend", "vlm.backend"),
                      ("backend", "llm.backend")):
        if getattr(args, flag, None) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    return load_config(args.config, overrides + args.overrides)


def _local(path: str) -> str:
    return path if "://" in path else str(Path(path).resolve())


def _print_plan(plan, cluster, address: str | None, profile: str | None = None) -> int:
    """Print the placement on `cluster`, else on the Ray cluster at `address` (or
    RAY_ADDRESS, or this machine as a local Ray sees it), and with a `profile` the split
    of replicas it suggests; 0 when the configured plan fits, else 2."""
    from scalecap_ray.resources import split

    engines = {label: dep for label, (_, dep) in plan.engine_groups().items()}
    pilot = split.read_profile(profile) if profile is not None else None
    if pilot is not None:
        split.check_profile(pilot, engines)
    if cluster is None:
        import ray

        from scalecap_ray.resources.cluster import ClusterShape

        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        try:
            cluster = ClusterShape.from_ray(f"Ray at {address}" if address else "Ray")
        finally:
            ray.shutdown()
    placement = plan.placement(cluster)
    print(placement.describe())
    if pilot is not None:
        best = split.suggest_split(pilot.seconds_per_image,
                                   lambda replicas: plan.placement(cluster, replicas))
        configured = {label: dep.replica_range[1] for label, dep in engines.items()}
        model_stages = [s for s in plan.stages if s.role is not None]
        batches = split.batch_sizes(
            pilot, [(s.name, s.role, s.settings.actor_range[1]) for s in model_stages],
            best.replicas)
        changed = {s.name: batches[s.name] for s in model_stages
                   if batches.get(s.name, s.settings.batch_size) != s.settings.batch_size}
        print(split.describe(pilot, best, configured, changed))
    return 0 if placement.ok else 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command in TOOLS:
        return TOOLS[args.command](args)
    if args.command == "smoke-model":
        from scalecap_ray.smoke import build_smoke_model

        print(build_smoke_model(args.dir))
        return 0
    if args.command == "export":
        from scalecap_ray.io.export import export

        try:
            n = export(args.output, args.format, args.out, include_errors=not args.no_errors)
        except BrokenPipeError:  # the reader stopped early (`| head`): not an error
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except (ValueError, OSError) as exc:
            print(f"scalecap-ray export: {exc}", file=sys.stderr)
            return 2
        print(f"exported {n} record(s)", file=sys.stderr)
        return 0
    if args.command == "report":
        try:
            from scalecap_ray.report import write_report
        except ImportError as exc:
            print(f"scalecap-ray report needs matplotlib: pip install 'scalecap-ray[report]' "
                  f"({exc})", file=sys.stderr)
            return 2
        try:
            path = write_report(_local(args.output), args.out, limit=args.limit)
        except (ValueError, OSError) as exc:
            print(f"scalecap-ray report: {exc}", file=sys.stderr)
            return 2
        print(f"report: {path}")
        return 0
    try:
        config = resolve_config(args)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        print(f"scalecap-ray: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "config":
        import yaml

        print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, width=100))
        return 0
    from scalecap_ray.io.output import ResumeError
    from scalecap_ray.io.sources import InputError
    from scalecap_ray.pipeline import plan_caption_job, plan_scalecap_job
    from scalecap_ray.resources.cluster import ClusterShape
    from scalecap_ray.resources.placement import PlacementError
    from scalecap_ray.runner import CapabilityError, run_plan

    if args.command == "run" or getattr(args, "job", None) == "run":
        plan = plan_scalecap_job(config)
    else:
        plan = plan_caption_job(config, prompt=getattr(args, "prompt", None),
                                output_key=getattr(args, "output_key", "caption"))
    try:
        cluster = (ClusterShape.from_description(args.cluster_resources)
                   if args.cluster_resources else None)
        if args.command == "plan":
            return _print_plan(plan, cluster, args.address, args.profile)
        result = run_plan(plan, _local(args.input), _local(args.output), overwrite=args.overwrite,
                          force=args.force, address=args.address, cluster=cluster,
                          progress=not args.quiet)
    except (InputError, ResumeError, PlacementError, CapabilityError, ValueError) as exc:
        print(f"scalecap-ray: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # run_plan has shut its engines down on the way out; every part file is whole.
        print("scalecap-ray: interrupted; the rows already written stay, and the same "
              "--output resumes from them", file=sys.stderr)
        return 130
    from scalecap_ray.io.manifest import summary_lines

    skipped = f", {result.rows_skipped} already there" if result.rows_skipped else ""
    print(f"wrote {result.rows_written} row(s){skipped}")
    print("\n".join(summary_lines(result.manifest)))
    print(f"output: {result.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
