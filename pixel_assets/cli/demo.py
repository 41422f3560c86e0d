"""`pixel demo`: write the demo sources, materialize the whole asset graph, print a summary."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from pixel_assets.cli._common import positive_float


def register(commands, bench) -> None:
    parser = commands.add_parser(
        "demo",
        help="generate the demo data and materialize the whole asset graph on it",
        description=(
            "Writes the seeded demo sources into the data root (default ./.pixel, or "
            "$PIXEL_DATA_ROOT; S3 when PIXEL_S3_BUCKET is set), materializes every asset and "
            "runs every check in one in-process run recorded in the local Dagster instance, "
            "and prints what happened to every record."
        ),
    )
    parser.add_argument("--root", help="local data root (overrides $PIXEL_DATA_ROOT)")
    parser.add_argument("--seed", type=int, default=7, help="demo generator seed (default 7)")
    parser.add_argument("--scale", type=positive_float, default=1.0, help="demo size multiplier (default 1.0)")
    parser.add_argument(
        "--skip-generate", action="store_true", help="use the sources already in the data root"
    )
    parser.set_defaults(handler=run_demo)


def _instance():
    """The instance `dagster dev` in this directory will show: $DAGSTER_HOME, else ./dagster.yaml."""
    import dagster as dg

    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    if Path("dagster.yaml").is_file():
        return dg.DagsterInstance.from_config(os.getcwd())
    return dg.DagsterInstance.local_temp()


def ui_hint() -> str:
    """How to see this run in the UI: the same instance and the same data root as the demo."""
    if not os.environ.get("DAGSTER_HOME") and not Path("dagster.yaml").is_file():
        return ("this run went to a temporary Dagster instance (no $DAGSTER_HOME, no ./dagster.yaml here); "
                "run the demo from the repository root to see it in `dagster dev`")
    env = [f"{name}={os.environ[name]}" for name in ("DAGSTER_HOME", "PIXEL_DATA_ROOT") if os.environ.get(name)]
    # Outside the repository root there is no workspace.yaml to tell dagster dev what to load.
    target = [] if Path("workspace.yaml").is_file() else ["-m", "pixel_assets.definitions"]
    command = " ".join([*env, "dagster dev", *target])
    if shutil.which("dagster") is None and Path(".venv/bin/dagster").is_file():  # ./scripts/demo.sh's venv
        command = f". .venv/bin/activate && {command}"
    return f"open the UI:  {command}   (in this directory), then http://127.0.0.1:3000"


def run_demo(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    if args.root:
        os.environ["PIXEL_DATA_ROOT"] = args.root

    from pixel_assets.defs.storage.resources import data_root_from_env
    from pixel_assets.lib.demo_data import generate_demo_sources

    data_root = data_root_from_env()
    root = data_root.root()
    print(f"data root: {root!r}")
    if not args.skip_generate:
        plan = generate_demo_sources(root, seed=args.seed, scale=args.scale)
        print(f"demo sources written: {plan.total_records} records in {len(plan.families)} families")

    from pixel_assets.defs.automation.automation import COMPILE_JOB
    from pixel_assets.definitions import defs

    definitions = defs()
    job = definitions.resolve_job_def(COMPILE_JOB)  # a named job, so the UI lists the run under it
    print(f"running job {job.name}: every data asset and check (in-process run; progress in the Dagster log) ...")
    with _instance() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        print_summary(result, root)
        print(f"\nrun id: {result.run_id}")
    print(ui_hint())
    return 0 if result.success else 1


def print_summary(result, root) -> None:
    from pixel_assets.lib.report import markdown_table

    try:
        accounting = result.output_for_node("dataset_accounting")
    except Exception:  # the run failed before accounting: say so, with the failed steps
        accounting = None
    if accounting:
        print("\nper-family accounting (read = quarantined + exact dups + near dups + requires_review + compiled):")
        print(markdown_table(accounting["families"]))
        print(markdown_table([{"family": "TOTAL", **accounting["totals"]}]))
    try:
        manifest = result.output_for_node("compiled_dataset")
        print(f"\ncompiled dataset: {manifest['total_conversations']} conversations; manifest at "
              f"{root.uri('final_dataset/manifest.json')}")
    except Exception:
        print("\ncompiled dataset: not produced")
    checks = [
        {"check": e.asset_check_evaluation_data.check_name,
         "passed": e.asset_check_evaluation_data.passed}
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    if checks:
        print("\nasset checks (the eight gates on compiled_dataset, and the PII detector targets):")
        print(markdown_table(checks))
    failed_steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    if failed_steps:
        print(f"\nFAILED steps: {', '.join(failed_steps)}", file=sys.stderr)
