"""`pixel train-stage JOB.json [--gpus N]`: one stage on N processes (torchrun, one per GPU) outside
Dagster, from the TrainJob a checkpoint asset writes (lib/training/distributed.py)."""

from __future__ import annotations

import argparse


def register(commands, bench) -> None:
    parser = commands.add_parser(
        "train-stage",
        help="train one stage from a TrainJob file on N GPUs (torchrun)",
        description="Runs `python -m torch.distributed.run --standalone --nproc_per_node N -m "
        "pixel_assets.lib.training.distributed JOB.json` (the command the Dagster Pipes path runs). N defaults "
        "to the stage's gpus_per_stage. The global batch stays the curriculum's: each process accumulates "
        "gradient_accumulation_steps / N. Exit status: the training's.",
    )
    parser.add_argument("job", help="TrainJob JSON (a checkpoint asset writes one under <work dir>/jobs/)")
    parser.add_argument("--gpus", type=int, help="processes (default: the stage's gpus_per_stage)")
    parser.add_argument("--dry-run", action="store_true", help="print the command and exit")
    parser.set_defaults(handler=run_train_stage)


def train_stage_command(job_path: str, gpus: int | None = None) -> list[str]:
    """The torchrun command for a job file; checks the job and the global batch first."""
    from pixel_assets.cli._common import CliError
    from pixel_assets.lib.training.distributed import TrainJob, torchrun_command

    try:
        stage = TrainJob.read(job_path).stage_config()
    except (OSError, ValueError, TypeError) as exc:
        raise CliError(f"{job_path}: not a readable TrainJob ({type(exc).__name__})") from None
    n = gpus or stage.gpus_per_stage
    if n < 1:
        raise CliError(f"--gpus must be a positive integer, got {n}")
    stage.accumulation_per_gpu(n)  # a CurriculumError naming the stage when the global batch cannot be kept
    return torchrun_command(n, job_path)


def run_train_stage(args: argparse.Namespace) -> int:
    import subprocess

    command = train_stage_command(args.job, args.gpus)
    if args.dry_run:
        print(" ".join(command))
        return 0
    return subprocess.call(command)
