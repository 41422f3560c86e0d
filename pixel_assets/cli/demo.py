"""`pixel demo`: write the demo sources, materialize the whole asset graph, print a summary."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
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
    parser.add_argument("--no-train", action="store_true", help="stop after the data assets (no training chain)")
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
    """How to see this run in the UI, as a command that works in a fresh shell: the same instance, the
    same data root and curriculum profile as the demo, and the venv's dagster when the shell has none."""
    if not os.environ.get("DAGSTER_HOME") and not Path("dagster.yaml").is_file():
        return ("this run went to a temporary Dagster instance (no $DAGSTER_HOME, no ./dagster.yaml here); "
                "run the demo from the repository root to see it in `dagster dev`")
    env = [f"{name}={os.environ[name]}" for name in ("DAGSTER_HOME", "PIXEL_DATA_ROOT", "PIXEL_CURRICULUM_PROFILE")
           if os.environ.get(name)]
    # Outside the repository root there is no workspace.yaml to tell dagster dev what to load.
    target = [] if Path("workspace.yaml").is_file() else ["-m", "pixel_assets.definitions"]
    venv = Path(".venv/bin/dagster")
    dagster = str(venv) if venv.is_file() else (shutil.which("dagster") or "dagster")
    if Path(dagster).is_absolute() and Path(dagster).resolve().is_relative_to(Path.cwd().resolve()):
        dagster = os.path.relpath(dagster)
    command = " ".join([*env, dagster, "dev", "-h", "127.0.0.1", *target])
    return f"open the UI (in this directory, any shell):\n  {command}\nthen http://127.0.0.1:3000"


def sources_line(plan, registry) -> str:
    """What was written, and why fewer records will be read: a disabled family is written (its source
    shape is part of the demo) but the registry leaves it out."""
    disabled = {f.name for f in registry.families if not f.enabled}
    skipped = {name: fam.records_written for name, fam in plan.families.items() if name in disabled}
    line = f"demo sources written: {plan.total_records} records in {len(plan.families)} families"
    if skipped:
        names = ", ".join(f"{n} ({c} records)" for n, c in sorted(skipped.items()))
        line += (f"; {names} {'is' if len(skipped) == 1 else 'are'} disabled in the registry and not read: "
                 f"{plan.total_records - sum(skipped.values())} records to read")
    return line


def run_demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    from pixel_assets.cli.demo_output import log_dir_for, quiet_libraries, run_job

    quiet_libraries()
    if not args.no_train:
        from pixel_assets.cli.demo_training import demo_environment

        demo_environment()  # the curriculum's demo profile: the tiny model, a few steps per stage
    if args.root:
        os.environ["PIXEL_DATA_ROOT"] = args.root

    from pixel_assets.defs.storage.resources import data_root_from_env
    from pixel_assets.lib.demo_data import generate_demo_sources
    from pixel_assets.lib.registry import load_registry

    data_root = data_root_from_env()
    root = data_root.root()
    print(f"data root: {root!r}")
    if not args.skip_generate:
        plan = generate_demo_sources(root, seed=args.seed, scale=args.scale)
        print(sources_line(plan, load_registry()))

    from pixel_assets.defs.automation.automation import COMPILE_JOB
    from pixel_assets.definitions import defs

    definitions = defs()
    job = definitions.resolve_job_def(COMPILE_JOB)  # a named job, so the UI lists the run under it
    print(f"running job {job.name}: every data asset and check (in-process run) ...")
    with _instance() as instance:
        result = run_job(job, instance, log_dir_for(root))
        print_summary(result, root)
        print(f"\nrun id: {result.run_id}")
        ok = result.success
        if ok and not args.no_train:
            from pixel_assets.cli.demo_training import run_training

            ok = run_training(definitions, instance, root)
    print(f"\npixel demo: {'done' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s")
    print(ui_hint())
    return 0 if ok else 1


def print_summary(result, root) -> None:
    from pixel_assets.lib.report import markdown_table

    try:
        accounting = result.output_for_node("dataset_accounting")
    except Exception:  # the run failed before accounting: say so, with the failed steps
        accounting = None
    if accounting:
        print("\nper-family accounting (enabled families; read = quarantined + exact dups + near dups + requires_review"
              " + held_out_of_test + compiled):")
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
