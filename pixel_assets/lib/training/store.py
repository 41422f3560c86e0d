"""Where stage checkpoints live: ``<data root>/checkpoints/<stage>/`` by default, or an S3 prefix
(``s3://pixelated-checkpoints/foundation/<stage>/``, bucket and prefix configurable) through a boto3
client (dagster-aws's S3Resource on the Dagster side). The same keys either way:

    <stage>/adapter_config.json, adapter_model.safetensors, tokenizer files   the final adapter
    <stage>/checkpoint.json                                                   metadata, written last
    <stage>/_progress/checkpoint-<step>/...                                   resumable trainer state
    <stage>/_progress/trained/..., _progress/trained.json                     a finished, unpublished training

A stage without ``checkpoint.json`` is not complete. On S3 the trainer works in a local scratch
directory: ``prepare_work_dir`` pulls the stage's ``_progress`` (so an interrupted stage resumes on
another machine), ``progress_callback`` pushes each checkpoint as the trainer saves it, and
``push_progress`` after training also uploads the trained adapter with its ``trained.json`` (so a
failure in evaluation, probes or publishing resumes without training, on any machine), and
``publish`` uploads the final adapter, then ``checkpoint.json``, then drops the remote progress.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from pixel_assets.lib.storage import DataRoot, LocalDataRoot, S3DataRoot
from pixel_assets.lib.training.progress import (
    CHECKPOINT_PREFIX, PROGRESS_DIR, RUN_MARKER, TRAINED_MARKER, complete_checkpoints,
)

DEFAULT_BUCKET = "pixelated-checkpoints"
DEFAULT_PREFIX = "foundation"
LOCAL_DIR = "checkpoints"  # under the data root
METADATA = "checkpoint.json"
TRAINED_DIR = "trained"  # under _progress on S3: the trained adapter until it is published
TRAINER_STATE = "trainer_state.json"  # HF writes it last in a checkpoint folder; uploaded last too


class CheckpointError(RuntimeError):
    """A checkpoint that should be there is missing or incomplete (the message names stage and URI)."""


def adapter_hash(local_dir: str | Path) -> str:
    """sha256 over the adapter's weights and config (what a child stage continues from)."""
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        path = Path(local_dir) / name
        if not path.is_file():
            raise CheckpointError(f"{local_dir}: no {name} (not an adapter directory)")
        h.update(name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class CheckpointStore:
    def __init__(self, root: DataRoot):
        self.root = root

    @classmethod
    def local(cls, data_root: str | Path) -> CheckpointStore:
        return cls(LocalDataRoot(Path(data_root) / LOCAL_DIR))

    @classmethod
    def s3(cls, client: Any, bucket: str = DEFAULT_BUCKET, prefix: str = DEFAULT_PREFIX) -> CheckpointStore:
        return cls(S3DataRoot(client, bucket, prefix))

    def __repr__(self) -> str:
        return f"CheckpointStore({self.root!r})"

    @property
    def is_local(self) -> bool:
        return isinstance(self.root, LocalDataRoot)

    def uri(self, stage: str) -> str:
        return self.root.uri(stage) + ("/" if not self.is_local else "")

    # --- the finished checkpoint -------------------------------------------------------------------

    def exists(self, stage: str) -> bool:
        return self.root.exists(f"{stage}/{METADATA}")

    def metadata(self, stage: str) -> dict:
        if not self.exists(stage):
            raise CheckpointError(f"stage {stage!r}: no complete checkpoint at {self.uri(stage)} (no {METADATA})")
        return json.loads(self.root.read_text(f"{stage}/{METADATA}"))

    def prepare_work_dir(self, stage: str, scratch: str | Path) -> Path:
        """The directory to train ``stage`` in, with any earlier progress of it in place.

        Local store: the stage's own directory (its old checkpoint.json is removed first, so a stage
        being re-trained never looks complete). S3: ``scratch/<stage>`` with the remote progress pulled.
        """
        self.root.delete(f"{stage}/{METADATA}")
        if self.is_local:
            work = self.root.local_path(stage)
            work.mkdir(parents=True, exist_ok=True)
            return work
        work = Path(scratch) / stage
        work.mkdir(parents=True, exist_ok=True)
        self.pull_progress(stage, work)
        return work

    def publish(self, stage: str, work_dir: str | Path, metadata: dict) -> dict:
        """Final adapter first, ``checkpoint.json`` last (with uri and adapter hash), then drop progress."""
        work_dir = Path(work_dir)
        meta = {**metadata, "stage": stage, "uri": self.uri(stage), "adapter_sha256": adapter_hash(work_dir)}
        if not self._is_own_dir(stage, work_dir):
            self.root.delete(f"{stage}/{METADATA}")
            for path in sorted(self._final_files(work_dir)):
                self.root.write_bytes(f"{stage}/{path.relative_to(work_dir).as_posix()}", path.read_bytes())
        self.root.write_text(f"{stage}/{METADATA}", json.dumps(meta, indent=2, sort_keys=True, default=str))
        self.clear_progress(stage)
        return meta

    def pull(self, stage: str, local_dir: str | Path) -> Path:
        """The finished adapter of ``stage`` as a local directory (the store's own for a local store)."""
        meta = self.metadata(stage)
        if self.is_local:
            return self.root.local_path(stage)
        local_dir = Path(local_dir)
        local_dir.mkdir(parents=True, exist_ok=True)
        for key in self.root.list_keys(f"{stage}/"):
            rel = key[len(stage) + 1:]
            if rel.split("/", 1)[0] == PROGRESS_DIR:
                continue
            target = local_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.root.read_bytes(key))
        if adapter_hash(local_dir) != meta.get("adapter_sha256"):
            raise CheckpointError(f"stage {stage!r}: the adapter at {self.uri(stage)} does not match its {METADATA}")
        return local_dir

    # --- resumable progress ------------------------------------------------------------------------

    def push_progress(self, stage: str, work_dir: str | Path) -> list[int]:
        """Mirror the complete local checkpoints of ``work_dir/_progress`` (each with its trainer
        state uploaded last); remote folders the trainer has rotated away are deleted. Steps pushed."""
        if self._is_own_dir(stage, work_dir):
            return []
        progress = Path(work_dir) / PROGRESS_DIR
        base = f"{stage}/{PROGRESS_DIR}"
        if (progress / RUN_MARKER).is_file():
            self.root.write_bytes(f"{base}/{RUN_MARKER}", (progress / RUN_MARKER).read_bytes())
        local = {d.name: d for d in complete_checkpoints(progress)}
        remote = self._remote_checkpoints(stage)
        pushed = []
        for name, folder in local.items():
            if name in remote:
                continue
            files = sorted(p for p in folder.rglob("*") if p.is_file())
            for path in sorted(files, key=lambda p: p.name == TRAINER_STATE):
                self.root.write_bytes(f"{base}/{name}/{path.relative_to(folder).as_posix()}", path.read_bytes())
            pushed.append(int(name[len(CHECKPOINT_PREFIX):]))
        for key in self.root.list_keys(f"{base}/"):
            folder = key[len(base) + 1:].split("/", 1)[0]
            if folder.startswith(CHECKPOINT_PREFIX) and folder not in local:
                self.root.delete(key)
        if (progress / TRAINED_MARKER).is_file():  # the finished training: adapter first, its record last
            for path in sorted(self._final_files(Path(work_dir))):
                self.root.write_bytes(f"{base}/{TRAINED_DIR}/{path.relative_to(work_dir).as_posix()}", path.read_bytes())
            self.root.write_bytes(f"{base}/{TRAINED_MARKER}", (progress / TRAINED_MARKER).read_bytes())
        return pushed

    def pull_progress(self, stage: str, work_dir: str | Path) -> int | None:
        """Download the remote complete checkpoints into ``work_dir/_progress``; the last step, or None."""
        base = f"{stage}/{PROGRESS_DIR}"
        progress = Path(work_dir) / PROGRESS_DIR
        self._pull_trained(stage, Path(work_dir))
        complete = self._remote_checkpoints(stage)
        if not complete:
            return None
        if self.root.exists(f"{base}/{RUN_MARKER}"):
            progress.mkdir(parents=True, exist_ok=True)
            (progress / RUN_MARKER).write_bytes(self.root.read_bytes(f"{base}/{RUN_MARKER}"))
        for key in self.root.list_keys(f"{base}/"):
            rel = key[len(base) + 1:]
            if rel.split("/", 1)[0] in complete:
                target = progress / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.root.read_bytes(key))
        for name in complete:  # the trainer state names the best checkpoint by its absolute path
            state_path = progress / name / TRAINER_STATE
            state = json.loads(state_path.read_text())
            if state.get("best_model_checkpoint"):
                state["best_model_checkpoint"] = str(progress / Path(state["best_model_checkpoint"]).name)
                state_path.write_text(json.dumps(state, indent=2, sort_keys=True))
        return max(int(n[len(CHECKPOINT_PREFIX):]) for n in complete)

    def clear_progress(self, stage: str) -> None:
        if self.is_local:
            shutil.rmtree(self.root.local_path(f"{stage}/{PROGRESS_DIR}"), ignore_errors=True)
            return
        for key in self.root.list_keys(f"{stage}/{PROGRESS_DIR}/"):
            self.root.delete(key)

    def progress_callback(self, stage: str, work_dir: str | Path):
        """A TrainerCallback pushing each saved checkpoint (no-op for a local store's own directory)."""
        from transformers import TrainerCallback

        store = self

        class PushProgress(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                store.push_progress(stage, work_dir)

        return PushProgress()

    # --- internals ---------------------------------------------------------------------------------

    def _pull_trained(self, stage: str, work_dir: Path) -> None:
        """A finished, unpublished training: its adapter into ``work_dir``, its record into _progress."""
        base = f"{stage}/{PROGRESS_DIR}"
        if not self.root.exists(f"{base}/{TRAINED_MARKER}"):
            return
        prefix = f"{base}/{TRAINED_DIR}/"
        for key in self.root.list_keys(prefix):
            target = work_dir / key[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.root.read_bytes(key))
        (work_dir / PROGRESS_DIR).mkdir(parents=True, exist_ok=True)
        if self.root.exists(f"{base}/{RUN_MARKER}"):  # without it prepare_progress would clear the record
            (work_dir / PROGRESS_DIR / RUN_MARKER).write_bytes(self.root.read_bytes(f"{base}/{RUN_MARKER}"))
        (work_dir / PROGRESS_DIR / TRAINED_MARKER).write_bytes(self.root.read_bytes(f"{base}/{TRAINED_MARKER}"))

    def _is_own_dir(self, stage: str, work_dir: str | Path) -> bool:
        return self.is_local and Path(work_dir).resolve() == self.root.local_path(stage).resolve()

    def _remote_checkpoints(self, stage: str) -> set[str]:
        base = f"{stage}/{PROGRESS_DIR}/"
        return {key[len(base):].split("/", 1)[0] for key in self.root.list_keys(base)
                if key.endswith(f"/{TRAINER_STATE}") and key[len(base):].startswith(CHECKPOINT_PREFIX)}

    @staticmethod
    def _final_files(work_dir: Path) -> list[Path]:
        return [p for p in work_dir.rglob("*") if p.is_file() and PROGRESS_DIR not in p.relative_to(work_dir).parts
                and p.name != METADATA]


def checkpoint_metadata(result: Any, *, config_hash: str | None = None, parent: dict | None = None,
                        dataset_fingerprint: str | None = None, data_version: str | None = None,
                        **extra: Any) -> dict:
    """checkpoint.json content from a StageResult (``publish`` adds the URI and the adapter hash).

    ``parent``: the parent stage's metadata (its ``uri`` and ``adapter_sha256`` are recorded)."""
    meta = dict(result.as_metadata())
    meta.pop("out_dir", None)
    meta.update(config_hash=config_hash, dataset_fingerprint=dataset_fingerprint, data_version=data_version,
                parent_uri=(parent or {}).get("uri"), parent_adapter_sha256=(parent or {}).get("adapter_sha256"))
    meta.update(extra)
    return meta
