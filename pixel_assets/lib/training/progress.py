"""A stage's work in progress, shared by the SFT and preference trainers: HF Trainer checkpoints
under ``<out_dir>/_progress/``, the marker of what they were trained on, the progress log callback,
and the ``trained.json`` record that keeps a finished training until the checkpoint is published.

``_progress`` lives until ``CheckpointStore.publish`` clears it: when evaluation, probes or the
publication fail after training, the next run finds ``trained.json`` (same inputs, same adapter
bytes) and goes straight to what failed, without a single new optimizer step.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROGRESS_DIR = "_progress"
RUN_MARKER = "pixel_run.json"  # in _progress: what the intermediate checkpoints were trained on
TRAINED_MARKER = "trained.json"  # in _progress: the finished training's result, until published
CHECKPOINT_PREFIX = "checkpoint-"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def digest(path: str | Path | None) -> str | None:
    """sha256 over a file, or over a folder's weights/config/data files (None for None)."""
    if path is None:
        return None
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if p.name.endswith((".safetensors", ".json", ".jsonl")):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def adapter_digest(out_dir: str | Path) -> str | None:
    """sha256 of the final adapter in ``out_dir`` (None when it is not all there)."""
    h = hashlib.sha256()
    for name in ADAPTER_FILES:
        path = Path(out_dir) / name
        if not path.is_file():
            return None
        h.update(name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class ProgressLog:
    """TrainerCallback: progress lines through ``log`` and the facts a stage result needs
    (``start_step``, ``start_tokens``: where this call's training began)."""

    def __new__(cls, log: Callable[[str], Any], stage: str):
        from transformers import TrainerCallback

        class Progress(TrainerCallback):
            def __init__(self) -> None:
                self.start_step = 0
                self.start_tokens = 0

            def on_train_begin(self, args, state, control, **kwargs):
                self.start_step, self.start_tokens = state.global_step, state.num_input_tokens_seen
                where = f"resuming from step {state.global_step}" if state.global_step else "from step 0"
                log(f"[{stage}] training {where} of {state.max_steps}")

            def on_log(self, args, state, control, logs=None, **kwargs):
                shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in (logs or {}).items()
                         if k in ("loss", "eval_loss", "learning_rate", "num_input_tokens_seen")}
                if shown:
                    log(f"[{stage}] step {state.global_step}/{state.max_steps} {shown}")

            def on_save(self, args, state, control, **kwargs):
                log(f"[{stage}] saved {CHECKPOINT_PREFIX}{state.global_step}")

        return Progress()


def complete_checkpoints(progress: Path) -> list[Path]:
    """``checkpoint-<step>`` folders whose trainer state was written (it is written last), by step."""
    found = []
    for d in progress.glob(f"{CHECKPOINT_PREFIX}*") if progress.is_dir() else []:
        suffix = d.name[len(CHECKPOINT_PREFIX):]
        if not (d.is_dir() and suffix.isdigit()):
            continue
        try:
            state = json.loads((d / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        if state.get("global_step") == int(suffix) and any(d.glob("adapter_model.*")):
            found.append(d)
    return sorted(found, key=lambda d: int(d.name[len(CHECKPOINT_PREFIX):]))


def prepare_progress(out_dir: Path, marker: dict, log: Callable[[str], Any]) -> Path | None:
    """Clear progress left by other inputs or cut short mid-save; the checkpoint to resume from, if any."""
    progress = out_dir / PROGRESS_DIR
    marker_path = progress / RUN_MARKER
    try:
        previous = json.loads(marker_path.read_text())
    except (OSError, ValueError):
        previous = None
    if progress.exists() and previous != marker:
        if any(progress.glob(f"{CHECKPOINT_PREFIX}*")) or (progress / TRAINED_MARKER).exists():
            log(f"[{marker['stage']}] intermediate checkpoints were made from other inputs or settings: starting over")
        shutil.rmtree(progress)
    complete = complete_checkpoints(progress)
    for d in progress.glob(f"{CHECKPOINT_PREFIX}*") if progress.is_dir() else []:
        if d not in complete:
            shutil.rmtree(d)  # cut short while saving
    progress.mkdir(parents=True, exist_ok=True)
    marker_path.write_text(json.dumps(marker, sort_keys=True))
    return complete[-1] if complete else None


def record_trained(out_dir: Path, marker: dict, result: dict) -> None:
    """After the final adapter is saved in ``out_dir``: its hash and the stage result, for a rerun."""
    record = {"marker": marker, "adapter_sha256": adapter_digest(out_dir), "result": result}
    (out_dir / PROGRESS_DIR / TRAINED_MARKER).write_text(json.dumps(record, sort_keys=True, default=str))


def trained_result(out_dir: Path, marker: dict) -> dict | None:
    """The recorded result of a training of the same inputs whose adapter is still in ``out_dir``
    unchanged, or None (train)."""
    try:
        record = json.loads((out_dir / PROGRESS_DIR / TRAINED_MARKER).read_text())
    except (OSError, ValueError):
        return None
    if record.get("marker") != marker or record.get("adapter_sha256") != adapter_digest(out_dir):
        return None
    return record["result"]


class KeepTrainedModel:
    """TrainerCallback holding the trained model (the best one, loaded back at the end) after the
    trainer is released, so the stage evaluates and probes it instead of loading the base again."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Keep(TrainerCallback):
            model = None

            def on_train_end(self, args, state, control, model=None, **kwargs):
                self.model = model

        return Keep()
