"""Training configuration on the Dagster side: the curriculum (loaded and validated when the
definitions load), asset keys, the checkpoint store and W&B resources, and helpers that read data
versions from the instance.

Environment (no code edits to switch):
  PIXEL_CURRICULUM            another curriculum file (default: the packaged config/curriculum.yaml)
  PIXEL_CURRICULUM_PROFILE    a profile of it, e.g. `demo` (few steps, small caps) or `production`
  PIXEL_CHECKPOINT_BUCKET     checkpoints go to s3://$PIXEL_CHECKPOINT_BUCKET/$PIXEL_CHECKPOINT_PREFIX/<stage>/
  PIXEL_CHECKPOINT_PREFIX     key prefix in that bucket (default `foundation`)
  PIXEL_S3_ENDPOINT_URL       S3-compatible endpoint (shared with the data root)
  PIXEL_FORGETTING_SEVERITY   WARN (default) or ERROR for the no_catastrophic_forgetting check
  PIXEL_FORGETTING_MAX_RISE   share an earlier stage's validation loss may rise (default 0.10)
  PIXEL_EVAL_RECORDS_PER_FAMILY  final_evaluation: test records per family (default all; the demo uses 2)
  PIXEL_PROBE_MAX_NEW_TOKENS  probe answer length (default: config/probes.yaml; the demo uses 24)
  WANDB_MODE / WANDB_API_KEY  W&B is offline unless a key is set and WANDB_MODE=online
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from pixel_assets.dagster_internals import latest_data_version  # noqa: F401  (the training defs call s.latest_data_version)
from pixel_assets.defs.keys import GROUP_TRAINING
from pixel_assets.lib.storage import DataRoot, LocalDataRoot, parse_s3_uri
from pixel_assets.lib.training.curriculum import Curriculum, StageConfig, load_curriculum

GROUP = GROUP_TRAINING
GPU_TAG = {"pixel/gpu": "h100"}
# Bumped when the training code changes what a stage builds; part of every code version.
TRAINING_CODE_VERSION = "1"
DEFAULT_CHECKPOINT_PREFIX = "foundation"
DUMMY_WANDB_KEY = "0" * 40  # offline runs only: wandb.login wants a 40-character key

BASE_MODEL_KEY = dg.AssetKey("base_model")
FINAL_EVALUATION_KEY = dg.AssetKey("final_evaluation")
FORGETTING_CHECK = "no_catastrophic_forgetting"
BASE_DIR = "models/base"


# Keys: <kind>/<stage>_<what>. The lineage graph shows only a node's last key part, so it names the
# stage and what the asset is (stage7_roleplay_data, stage7_roleplay_checkpoint, stage7_roleplay_inputs)
# and is unique across the graph; the prefix keeps the catalog's folders.
def stage_data_key(stage: str) -> dg.AssetKey:
    return dg.AssetKey(["stage_data", f"{stage}_data"])


def checkpoint_key(stage: str) -> dg.AssetKey:
    """checkpoints/<stage>_checkpoint; the preference stage's checkpoint is checkpoints/final_model."""
    final = stage in ("preference", "final_model")  # callers name the last checkpoint either way
    return dg.AssetKey(["checkpoints", "final_model" if final else f"{stage}_checkpoint"])


def checkpoint_dir_name(stage: str) -> str:
    return "final_model" if stage == "preference" else stage


def training_inputs_key(stage: str) -> dg.AssetKey:
    return dg.AssetKey(["training_inputs", f"{stage}_inputs"])


def asset_label(key: dg.AssetKey) -> str:
    """What the graph shows for an asset: the last part of its key."""
    return key.path[-1]


def stage_dir(stage: str) -> str:
    return f"training/stages/{stage}"


def curriculum() -> Curriculum:
    """The curriculum the definitions were built from ($PIXEL_CURRICULUM, $PIXEL_CURRICULUM_PROFILE);
    a CurriculumError here fails the code location's load, naming the stage and the field."""
    return load_curriculum()


def chain(cur: Curriculum) -> list[StageConfig]:
    """Every enabled stage in training order, the preference stage last."""
    pref = cur.preference_stage()
    return cur.sft_chain() + ([pref] if pref else [])


def code_version(stage: StageConfig) -> str:
    return f"{TRAINING_CODE_VERSION}-{stage.config_hash().removeprefix('sha256:')[:16]}"


def version_hash(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, Any]:
    """Metadata values (plain) of the latest materialization of ``key``."""
    records = instance.fetch_materializations(key, limit=1).records
    if not records:
        return {}
    mat = records[0].asset_materialization
    return {k: getattr(v, "value", v) for k, v in (mat.metadata if mat else {}).items()}


# --- local working copies ----------------------------------------------------------------------


def local_dir(root: DataRoot, prefix: str, cache: Path) -> Path:
    """A local directory holding the files under ``prefix``: the data root's own folder when it is
    local, else a copy downloaded into ``cache`` (S3)."""
    if isinstance(root, LocalDataRoot):
        return root.local_path(prefix)
    target = cache / prefix
    for key in root.list_keys(prefix.rstrip("/") + "/"):
        dest = target / key[len(prefix.rstrip("/")) + 1:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(root.read_bytes(key))
    return target


def upload_dir(root: DataRoot, local: Path, prefix: str) -> None:
    """Copy a local folder to ``prefix`` on the data root (nothing to do when it already is there)."""
    if isinstance(root, LocalDataRoot) and root.local_path(prefix).resolve() == local.resolve():
        return
    for path in sorted(local.rglob("*")):
        if path.is_file():
            root.write_bytes(f"{prefix.rstrip('/')}/{path.relative_to(local).as_posix()}", path.read_bytes())


# --- resources ---------------------------------------------------------------------------------


class CheckpointStoreResource(dg.ConfigurableResource):
    """Where checkpoints live: the data root's `checkpoints/<stage>/` (default), or
    s3://<bucket>/<prefix>/<stage>/ through dagster-aws when a bucket is configured."""

    bucket: str | None = None
    prefix: str = DEFAULT_CHECKPOINT_PREFIX
    s3: S3Resource | None = None

    def store(self, data_root: DataRoot):
        """The library's CheckpointStore: <data root>/checkpoints/ (local or the data root's S3
        bucket), or the configured checkpoint bucket and prefix."""
        from pixel_assets.lib.storage import S3DataRoot
        from pixel_assets.lib.training.store import LOCAL_DIR, CheckpointStore

        if self.bucket:
            return CheckpointStore.s3((self.s3 or S3Resource()).get_client(), self.bucket, self.prefix.strip("/"))
        if isinstance(data_root, LocalDataRoot):
            return CheckpointStore.local(data_root.path)
        prefix = f"{data_root.prefix.strip('/')}/{LOCAL_DIR}" if data_root.prefix else LOCAL_DIR
        return CheckpointStore(S3DataRoot(data_root.client, data_root.bucket, prefix))


def checkpoint_store_from_env(env: dict[str, str] | None = None, cur: Curriculum | None = None) -> CheckpointStoreResource:
    """PIXEL_CHECKPOINT_BUCKET (+ PIXEL_CHECKPOINT_PREFIX), else the curriculum's checkpoint_store
    (s3://bucket/prefix/), else the data root."""
    env = dict(os.environ if env is None else env)
    bucket = (env.get("PIXEL_CHECKPOINT_BUCKET") or "").strip()
    prefix = (env.get("PIXEL_CHECKPOINT_PREFIX") or "").strip().strip("/") or None
    if not bucket and cur is not None and cur.checkpoint_store:
        bucket, uri_prefix = parse_s3_uri(cur.checkpoint_store)
        prefix = prefix or uri_prefix.strip("/")
    if not bucket:
        return CheckpointStoreResource()
    return CheckpointStoreResource(
        bucket=bucket, prefix=DEFAULT_CHECKPOINT_PREFIX if prefix is None else prefix,
        s3=S3Resource(endpoint_url=env.get("PIXEL_S3_ENDPOINT_URL") or None,
                      region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"),
    )


class TrainingSettings(dg.ConfigurableResource):
    """Settings of the training assets that are not part of the curriculum."""

    forgetting_severity: str = "WARN"  # or ERROR: a failed forgetting check then fails the run
    forgetting_max_rise: float = 0.10  # an earlier stage's val loss may rise by this share of its own value
    force_cpu: bool = False
    probe_max_new_tokens: int | None = None  # shorter probe answers (demo, tests); default: probes.yaml
    eval_records_per_family: int | None = None  # final_evaluation: test records per family and section (None = all)
    work_dir: str | None = None  # local scratch (S3 stores); default <data root>/cache/training or ./.pixel/cache

    def severity(self) -> dg.AssetCheckSeverity:
        value = self.forgetting_severity.upper()
        if value not in ("WARN", "ERROR"):
            raise ValueError(f"forgetting_severity must be WARN or ERROR, got {self.forgetting_severity!r}")
        return dg.AssetCheckSeverity[value]


def training_settings_from_env(env: dict[str, str] | None = None) -> TrainingSettings:
    env = dict(os.environ if env is None else env)
    return TrainingSettings(
        forgetting_severity=(env.get("PIXEL_FORGETTING_SEVERITY") or "WARN").upper(),
        forgetting_max_rise=float(env.get("PIXEL_FORGETTING_MAX_RISE") or 0.10),
        eval_records_per_family=int(env["PIXEL_EVAL_RECORDS_PER_FAMILY"]) if env.get("PIXEL_EVAL_RECORDS_PER_FAMILY") else None,
        probe_max_new_tokens=int(env["PIXEL_PROBE_MAX_NEW_TOKENS"]) if env.get("PIXEL_PROBE_MAX_NEW_TOKENS") else None,
    )


def wandb_resource_from_env(env: dict[str, str] | None = None) -> dg.ResourceDefinition:
    """W&B for the training assets, chosen from `env` (default: the process environment) and never
    by changing it: online only when WANDB_MODE=online and WANDB_API_KEY is set (dagster-wandb's
    resource, which logs in with that key); otherwise offline, with no login and no network."""
    env = dict(os.environ if env is None else env)
    if (env.get("WANDB_MODE") or "").lower() == "online" and env.get("WANDB_API_KEY"):
        from dagster_wandb import wandb_resource

        return wandb_resource.configured({"api_key": {"env": "WANDB_API_KEY"}})
    return dg.ResourceDefinition.hardcoded_resource({"sdk": None, "mode": "offline"},
                                                    "W&B offline: runs are written under the cache, nothing is sent")
