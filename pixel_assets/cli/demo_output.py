"""What `pixel demo` shows in the terminal: its own lines only. While a job runs, everything the
libraries write (Dagster's console log, transformers' weight-loading bars, TRL and W&B notices,
Python warnings) goes to a log file beside the instance; the run's events, the managed Python loggers
included, are in the Dagster log either way (`dagster dev` shows them)."""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

LOG_DIR = Path(".pixel") / "logs"  # where the data root is not a local folder (S3)


def log_dir_for(root) -> Path:
    """`<data root>/logs` for a local data root (./.pixel/logs by default), else ./.pixel/logs."""
    path = getattr(root, "path", None)
    return Path(path) / "logs" if path is not None else LOG_DIR


def quiet_libraries() -> None:
    """Library switches that keep progress bars and notices out of any terminal (set before import)."""
    import warnings

    for name, value in (("HF_DATASETS_DISABLE_PROGRESS_BARS", "1"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                        ("TRANSFORMERS_VERBOSITY", "error"), ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1"),
                        ("WANDB_SILENT", "true"), ("WANDB_CONSOLE", "off"), ("TQDM_DISABLE", "1")):
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers(\.|$)")
    logging.captureWarnings(True)  # warnings.warn -> the `py.warnings` logger (Dagster's managed loggers)


@contextmanager
def library_output_to(path: Path):
    """Send file descriptors 1 and 2 (what C code, tqdm, print and logging handlers write) to ``path``
    for the duration; the demo prints its own lines outside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Wall seconds per step of a finished run (start to success or failure), from its event log."""
    started, took = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
            took[event.step_key] = entry.timestamp - started[event.step_key]
    return took


def run_job(job, instance, log_dir: Path = LOG_DIR):
    """Run ``job`` in process with the library output in ``<log_dir>/<job>.log``; print its time and
    its slowest steps. Returns the result."""
    log_path = log_dir / f"{job.name}.log"
    print(f"  (library output and the Dagster console log: {log_path})", flush=True)
    started = time.monotonic()
    with library_output_to(log_path):
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    took = time.monotonic() - started
    slow = sorted(step_seconds(instance, result.run_id).items(), key=lambda kv: -kv[1])[:4]
    print(f"job {job.name}: {'succeeded' if result.success else 'FAILED'} in {took:.0f} s "
          f"(slowest steps: {', '.join(f'{k} {v:.0f} s' for k, v in slow)})")
    return result
