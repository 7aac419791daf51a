"""Command line: `scalecap-ray run|caption|smoke-model ...` (also `python -m scalecap_ray`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from scalecap_ray.config import ScaleCapConfig, load_config


def _job_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="JSONL file of {\"image\": path} records.")
    p.add_argument("--output", required=True, help="Folder for the Parquet output.")
    p.add_argument("--config", help="YAML config file (see docs/configuration.md).")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="Override one config field, e.g. --set vlm.model=/models/x "
                        "--set llm.tensor_parallel_size=4 (repeatable).")
    p.add_argument("--smoke", action="store_true",
                   help="Use the built-in tiny random-weight model for every role (CPU tests "
                        "and demos; its text is meaningless).")
    p.add_argument("--limit", type=int, help="Process only the first N input rows.")
    p.add_argument("--image-key", help="Input field holding the image path (default: image).")
    p.add_argument("--id-key", help="Input field holding a row id (default: hash of the path).")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a "
                                     "local Ray started for this run).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scalecap-ray", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="The ScaleCap pipeline: dense, verified captions.")
    _job_arguments(run)

    cap = sub.add_parser("caption", help="Plain captions: one VLM request per image.")
    _job_arguments(cap)
    cap.add_argument("--prompt", help="Caption prompt (default: the ScaleCap P1 prompt).")
    cap.add_argument("--output-key", default="caption", help="Output column (default: caption).")

    show = sub.add_parser("config", help="Print the resolved configuration (YAML) and exit.")
    show.add_argument("--config", help="YAML config file.")
    show.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="Override one config field (repeatable).")

    smoke = sub.add_parser("smoke-model", help="Build the tiny random-weight test model.")
    smoke.add_argument("dir", help="Folder to write the checkpoint into.")
    return parser


def resolve_config(args: argparse.Namespace) -> ScaleCapConfig:
    """The job config from --config, the shortcut flags and --set (which win)."""
    overrides: list[str] = []
    if getattr(args, "smoke", False):
        from scalecap_ray.smoke import ensure_smoke_model

        path = ensure_smoke_model()
        overrides += [f"vlm.model={path}", f"llm.model={path}"]
    for flag, key in (("limit", "input.limit"), ("image_key", "input.image_key"),
                      ("id_key", "input.id_key")):
        if getattr(args, flag, None) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    return load_config(args.config, overrides + args.overrides)


def _init_ray(address: str | None) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "smoke-model":
        from scalecap_ray.smoke import build_smoke_model

        print(build_smoke_model(args.dir))
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
    from scalecap_ray.pipeline import plan_caption_job, plan_scalecap_job, run_plan

    if args.command == "run":
        plan = plan_scalecap_job(config)
    else:
        plan = plan_caption_job(config, prompt=args.prompt, output_key=args.output_key)
    _init_ray(args.address)
    output = str(Path(args.output).resolve())
    run_plan(plan, str(Path(args.input).resolve()), output)
    print(f"output: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
