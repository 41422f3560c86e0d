"""One stage on any number of GPUs: the entry point ``torchrun`` starts once per GPU.

    torchrun --standalone --nproc_per_node N -m pixel_assets.lib.training.distributed JOB.json

JOB.json is a ``TrainJob``: the curriculum's stage, the base, the parent adapter, the stage data, the
output folder and (optionally) where to publish the checkpoint. Every rank runs the unchanged SFT or
preference trainer (HF Trainer under accelerate finds the process group torchrun set up): data
parallel by default, FSDP (full shard, LoRA-aware through transformers' PEFT auto-wrap, bf16 on
GPUs) when the stage says ``strategy: fsdp``. Gradient accumulation is derived per world size so
that per_device_batch x accumulation x world size is the curriculum's global batch.

Rank 0 alone writes progress metadata, opens the W&B run, publishes the checkpoint and, when Dagster
Pipes started the process, reports log lines and the final figures (steps, losses, the published
URI) back to the Dagster step. Every rank resumes from the same saved step (``ranks.from_main``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixel_assets.lib.training import ranks
from pixel_assets.lib.training.curriculum import StageConfig

MODULE = "pixel_assets.lib.training.distributed"


@dataclass
class TrainJob:
    """Everything one stage run needs, as JSON (written by the Dagster side, read by every rank)."""

    stage: dict[str, Any]  # the curriculum's StageConfig as a mapping (dataclasses.asdict)
    base: str
    data_dir: str  # the stage's train/val files (SFT) or the preference data folder
    out_dir: str  # final adapter + tokenizer; intermediate checkpoints in out_dir/_progress
    parent_adapter: str | None = None
    force_cpu: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)  # the trainer config's own fields (SFTStageConfig / PreferenceConfig)
    publish: dict[str, Any] | None = None  # {"store": store_spec(...), "name": ..., "metadata": {...}}
    result_path: str | None = None  # rank 0 writes the result's figures here (JSON)
    wandb: dict[str, Any] | None = None  # {"dagster_run_id": ..., "dir": ...}: rank 0 opens a W&B run

    @classmethod
    def for_stage(cls, stage: StageConfig, **values: Any) -> TrainJob:
        return cls(stage=dataclasses.asdict(stage), **values)

    def write(self, path: str | Path) -> Path:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True, default=str))
        return Path(path)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)

    @classmethod
    def read(cls, where: str | Path) -> TrainJob:
        """From a file, or ``env:NAME``: the JSON in environment variable NAME (a pod without a shared file)."""
        where = str(where)
        text = os.environ[where[4:]] if where.startswith("env:") else Path(where).read_text()
        return cls(**json.loads(text))

    def stage_config(self) -> StageConfig:
        """The StageConfig back from JSON (tuples restored; config_hash is unchanged by the round trip)."""
        values = dict(self.stage)
        values["splits"] = tuple(values.get("splits") or ("train",))
        values["source_families"] = {k: tuple(v) for k, v in (values.get("source_families") or {}).items()}
        return StageConfig(**values)


def torchrun_command(gpus: int, job: str, python: str | None = None) -> list[str]:
    """torchrun on one node (as `python -m torch.distributed.run`: by default the same interpreter)."""
    return [python or sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
            "-m", MODULE, job]


def fsdp_trainer_args(strategy: str, world: int) -> dict[str, Any]:
    """TrainingArguments fields for the stage's strategy at this world size ({} = plain DDP).

    FSDP2 (transformers 5's default), full shard (parameters resharded after each forward),
    auto-wrapped per decoder layer (the model's _no_split_modules) with, for a PEFT model, the LoRA
    layers wrapped apart (transformers' update_fsdp_plugin_peft); the state dict is gathered in full
    so rank 0 saves a plain adapter. FSDP's own activation checkpointing replaces the trainer's
    gradient checkpointing (both at once raise in transformers). bf16 comes from the device plan."""
    if strategy != "fsdp" or world < 2:
        return {}
    return {"fsdp": True, "gradient_checkpointing": False,
            "fsdp_config": {"version": 2, "reshard_after_forward": True, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                            "state_dict_type": "FULL_STATE_DICT", "activation_checkpointing": True}}


def placement_reporter(log: Callable[[str], Any], strategy: str):
    """TrainerCallback logging how accelerate actually placed the model (DistributedType.FSDP,
    MULTI_GPU, MULTI_CPU, ...): accelerate applies FSDP on GPUs only, so on CPU a `fsdp` stage
    runs data parallel, and this line says so."""
    from transformers import TrainerCallback

    class PlacementReport(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            from accelerate.state import AcceleratorState

            placed = str(AcceleratorState().distributed_type).rsplit(".", 1)[-1]
            note = " (accelerate shards on GPUs only: running data parallel)" \
                if strategy == "fsdp" and placed != "FSDP" else ""
            log(f"placement: {ranks.world_size()} process(es), strategy {strategy}, accelerate {placed}{note}")

    return PlacementReport()


def trainer_config(job: TrainJob, stage: StageConfig, world: int, plan):
    """The trainer's config (SFTStageConfig or PreferenceConfig) with accumulation for `world` processes."""
    accumulation = stage.accumulation_per_gpu(world)  # raises when the global batch cannot be kept
    if "gradient_accumulation_steps" in job.overrides:
        raise ValueError(f"stage {stage.name!r}: gradient_accumulation_steps is derived from the stage's global "
                         "batch and the world size; set it on the curriculum stage, not as an override")
    if stage.kind == "preference":
        from pixel_assets.lib.training.preference_config import PreferenceConfig

        return PreferenceConfig.from_stage(stage, gradient_accumulation_steps=accumulation, **job.overrides)
    from pixel_assets.lib.training.sft import SFTStageConfig

    return SFTStageConfig.from_stage(stage, device=plan, gradient_accumulation_steps=accumulation, **job.overrides)


@contextlib.contextmanager
def _wandb(job: TrainJob, stage: StageConfig) -> Iterator[Any]:
    if not (job.wandb and ranks.is_main()):
        yield None
        return
    from pixel_assets.lib.training.tracking import wandb_run

    config = {"stage": stage.name, "kind": stage.kind, "config_hash": stage.config_hash(),
              "world_size": ranks.world_size(), "strategy": stage.strategy}
    with wandb_run(stage.name, job.wandb["dagster_run_id"], config, wandb_dir=job.wandb.get("dir")) as run:
        yield run


def train(job: TrainJob, *, log: Callable[[str], Any] = print, callbacks=()):
    """Train the job's stage on this rank (call it on every rank); the trainer's result."""
    from pixel_assets.lib.training.models import device_plan, load_tokenizer

    stage, world = job.stage_config(), ranks.world_size()
    if world != stage.gpus_per_stage:
        log(f"[{stage.name}] running on {world} process(es); the curriculum plans {stage.gpus_per_stage} "
            f"(the global batch is kept either way)")
    plan = device_plan(force_cpu=job.force_cpu)
    config = trainer_config(job, stage, world, plan)
    extra = fsdp_trainer_args(stage.strategy, world)
    tokenizer = load_tokenizer(job.base)
    out, data = Path(job.out_dir), Path(job.data_dir)
    out.mkdir(parents=True, exist_ok=True)
    parent = Path(job.parent_adapter) if job.parent_adapter else None
    callbacks = [placement_reporter(log, stage.strategy), *callbacks]
    if job.publish and job.publish["store"]["kind"] != "local" and ranks.is_main():
        # an S3 store keeps each saved step, so a rerun on another machine resumes from it
        callbacks = [*callbacks, store_from_spec(job.publish["store"]).progress_callback(job.publish["name"], out)]
    with _wandb(job, stage) as run:
        if stage.kind == "preference":
            from pixel_assets.lib.training.align import train_preference

            return train_preference(base=job.base, stage7_adapter=parent, tokenizer=tokenizer, data_path=data,
                                    out_dir=out, config=config, plan=plan, callbacks=list(callbacks), log=log,
                                    wandb_run=run, trainer_args=extra)
        from pixel_assets.lib.training.sft import train_sft_stage

        return train_sft_stage(base=job.base, parent_adapter=parent, tokenizer=tokenizer,
                               train_path=data / "train.jsonl", val_path=data / "val.jsonl", out_dir=out,
                               config=config, callbacks=list(callbacks), log=log, wandb_run=run, trainer_args=extra)


# --- publishing and reporting (rank 0) ------------------------------------------------------------


def store_spec(store) -> dict[str, Any]:
    """A CheckpointStore as JSON, for the job file (credentials stay in the environment)."""
    from pixel_assets.lib.storage import LocalDataRoot

    root = store.root
    if isinstance(root, LocalDataRoot):
        return {"kind": "local", "path": str(root.path)}
    meta = root.client.meta
    return {"kind": "s3", "bucket": root.bucket, "prefix": root.prefix, "endpoint_url": meta.endpoint_url,
            "region": meta.region_name}


def store_from_spec(spec: dict[str, Any]):
    from pixel_assets.lib.storage import LocalDataRoot
    from pixel_assets.lib.training.store import CheckpointStore

    if spec["kind"] == "local":
        return CheckpointStore(LocalDataRoot(spec["path"]))
    import boto3

    client = boto3.client("s3", endpoint_url=spec.get("endpoint_url"), region_name=spec.get("region"))
    return CheckpointStore.s3(client, spec["bucket"], spec["prefix"])


def figures(result: Any) -> dict[str, Any]:
    """The result's figures as flat JSON-able values (preference figures as preference/<name>)."""
    values = dict(result.as_metadata())
    values.pop("out_dir", None)
    for key, value in (values.pop("preference", None) or {}).items():
        values[f"preference/{key}"] = value
    return values


def publish(job: TrainJob, result: Any) -> dict[str, Any]:
    """Rank 0: publish the stage's checkpoint with the Dagster side's metadata plus the figures."""
    spec = job.publish or {}
    store = store_from_spec(spec["store"])
    meta = {**spec.get("metadata", {}), **dict(result.as_metadata()), "world_size": ranks.world_size()}
    meta.pop("out_dir", None)
    return store.publish(spec["name"], job.out_dir, meta)


@contextlib.contextmanager
def _pipes() -> Iterator[Any]:
    """Dagster Pipes on rank 0 when a Pipes client started this process; None otherwise."""
    from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

    if ranks.is_main() and PipesEnvVarParamsLoader().is_dagster_pipes_process():
        with open_dagster_pipes() as pipes:
            yield pipes
    else:
        yield None


def main(argv: list[str] | None = None, callbacks=()) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    parser.add_argument("job", help="the TrainJob JSON file, or env:NAME for JSON in environment variable NAME")
    args = parser.parse_args(argv)
    job = TrainJob.read(args.job)
    ranks.init(cpu=job.force_cpu)
    tag = f"[rank {ranks.rank()}/{ranks.world_size()}]"
    try:
        with _pipes() as pipes:
            def log(message: str) -> None:  # the trainer's progress lines (steps, losses, saves)
                print(f"{tag} {message}", flush=True)
                if pipes is not None:  # rank 0 under Pipes: also into the Dagster step's log
                    pipes.log.info(message)

            result = train(job, log=log, callbacks=callbacks)
            ranks.barrier()
            if not ranks.is_main():
                return 0
            values = figures(result)
            if job.publish:
                info = publish(job, result)
                values.update(uri=info["uri"], adapter_sha256=info["adapter_sha256"])
                log(f"published {info['uri']}")
            values.update(world_size=ranks.world_size(), strategy=job.stage.get("strategy", "ddp"))
            if job.result_path:
                Path(job.result_path).write_text(json.dumps(values, sort_keys=True, default=str))
            if pipes is not None:
                pipes.report_asset_materialization(
                    metadata={k: v for k, v in values.items() if v is not None and not isinstance(v, (dict, list))})
        return 0
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
