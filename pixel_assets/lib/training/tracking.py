"""Weights & Biases: one run per training stage, offline by default (no network).

The run is named ``<dagster run id[:8]>-<stage>`` and grouped by the Dagster run id, so one
materialization of the chain is one W&B group. The Dagster side supplies the SDK through
dagster-wandb's ``wandb_resource`` (pass it as ``sdk``); outside Dagster the installed ``wandb``
module is used. The trainer reports into the run (``report_to=["wandb"]``; transformers' callback
reuses the run initialised here instead of starting its own).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEFAULT_PROJECT = "pixel-assets"


def run_name(stage: str, dagster_run_id: str) -> str:
    return f"{dagster_run_id[:8]}-{stage}"


@contextmanager
def wandb_run(stage: str, dagster_run_id: str, config: dict | None = None, *, mode: str | None = None,
              sdk: Any = None, wandb_dir: str | Path | None = None, project: str | None = None) -> Iterator[Any]:
    """An initialised W&B run for one stage; finished when the block ends (failed runs marked so).

    ``mode``: "offline" unless given or set in WANDB_MODE ("online" needs an API key and network).
    ``wandb_dir``: where offline runs are written (default: WANDB_DIR, else a temporary directory).
    """
    if sdk is None:
        import wandb as sdk
    mode = mode or os.environ.get("WANDB_MODE") or "offline"
    tmp = None
    if wandb_dir is None and not os.environ.get("WANDB_DIR"):
        tmp = tempfile.mkdtemp(prefix="pixel-wandb-")
        wandb_dir = tmp
    wandb_dir = Path(wandb_dir or os.environ["WANDB_DIR"])
    wandb_dir.mkdir(parents=True, exist_ok=True)
    previous_mode = os.environ.get("WANDB_MODE")
    os.environ["WANDB_MODE"] = mode  # transformers' callback and wandb's service read it; restored after
    try:
        yield from _initialised(sdk, stage, dagster_run_id, config, mode, wandb_dir, project)
    finally:
        if previous_mode is None:
            os.environ.pop("WANDB_MODE", None)
        else:
            os.environ["WANDB_MODE"] = previous_mode


def _initialised(sdk: Any, stage: str, dagster_run_id: str, config: dict | None, mode: str, wandb_dir: Path,
                 project: str | None) -> Iterator[Any]:
    run = sdk.init(
        project=project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
        name=run_name(stage, dagster_run_id), group=dagster_run_id, job_type=stage,
        config=dict(config or {}), mode=mode, dir=str(wandb_dir), reinit="finish_previous",
        settings=sdk.Settings(silent=True, console="off", x_disable_stats=True, disable_git=True),
    )
    try:
        yield run
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()


def run_reference(run: Any) -> str | None:
    """The run's URL when it syncs online; the offline run directory otherwise (for metadata)."""
    if run is None:
        return None
    url = None if getattr(run, "offline", False) else getattr(run, "url", None)
    if url:
        return str(url)
    run_dir = getattr(getattr(run, "settings", None), "sync_dir", None) or getattr(run, "dir", None)
    return str(Path(run_dir).parent if run_dir and Path(run_dir).name == "files" else run_dir) if run_dir else None
