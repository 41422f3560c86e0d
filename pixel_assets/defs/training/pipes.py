"""Stages on more than one GPU: the checkpoint asset runs the stage's training through Dagster Pipes
instead of in the step's own process.

- One multi-GPU machine (default): `dg.PipesSubprocessClient` runs
  `python -m torch.distributed.run --standalone --nproc_per_node N -m pixel_assets.lib.training.distributed JOB.json`
  next to the step (the run worker the routing launcher placed on an N-GPU node, see `pixel/gpus`).
- A cluster (`PIXEL_TRAINING_PIPES=k8s`): dagster-k8s's `PipesK8sClient` starts one pod with N GPUs
  (`k8s_pod_spec`), the job passed as JSON in $PIXEL_TRAIN_JOB; its paths (base, data, work
  folder) must be on a volume both pods mount at the same path (`PIXEL_TRAINING_PVC`, mounted at
  the training work dir) or the checkpoint store must be S3.

Rank 0 of the training process reports each logged step to the step's log and, at the end, a
materialization with the figures (steps, losses, tokens, world size) and the published URI; the
asset merges that metadata into its own materialization (probes, forgetting check, versions).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from pixel_assets.lib.training.distributed import TrainJob, torchrun_command

PIPES_RESOURCE = "training_pipes"  # the checkpoint assets' parameter of that name
PIPES_ENV = "PIXEL_TRAINING_PIPES"  # "subprocess" (default) or "k8s"
JOB_ENV = "PIXEL_TRAIN_JOB"  # the TrainJob JSON, for a pod that shares no file with the step
SHM_SIZE = "64Gi"  # NCCL and the dataloader need more /dev/shm than a container's default 64 MB


def k8s_pod_spec(gpus: int, *, volume_claim: str | None = None, mount_path: str | None = None,
                 node_selector: dict[str, str] | None = None) -> dict[str, Any]:
    """The Pipes pod's spec: one container asking for `gpus` GPUs (limit = request for extended
    resources), a memory-backed /dev/shm, the H100 toleration, and the shared work volume if given."""
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}}]
    if volume_claim:
        mounts.append({"name": "work", "mountPath": mount_path or "/work"})
        volumes.append({"name": "work", "persistentVolumeClaim": {"claimName": volume_claim}})
    return {
        "restartPolicy": "Never",
        "containers": [{
            "name": "trainer",
            "resources": {"limits": {"nvidia.com/gpu": str(gpus)}, "requests": {"nvidia.com/gpu": str(gpus)}},
            "volumeMounts": mounts,
        }],
        "volumes": volumes,
        "nodeSelector": node_selector or {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }


def training_pipes_from_env(env: dict[str, str] | None = None):
    """The Pipes client multi-GPU stages run through: a local torchrun subprocess, or a K8s pod."""
    env = dict(os.environ if env is None else env)
    if (env.get(PIPES_ENV) or "subprocess") == "k8s":
        from dagster_k8s import PipesK8sClient

        return PipesK8sClient(load_incluster_config=True)
    return dg.PipesSubprocessClient(forward_termination=True)


def run_stage(context: dg.AssetExecutionContext, client: Any, job: TrainJob, gpus: int,
              job_dir: Path) -> dict[str, Any]:
    """Train (and publish, rank 0) the job's stage on `gpus` processes through Pipes; the figures
    rank 0 reported, as plain values (steps, train_loss, eval_loss, ..., uri, adapter_sha256)."""
    context.log.info(f"{job.stage['name']}: training on {gpus} GPU(s) with {job.stage.get('strategy', 'ddp')} "
                     f"through {type(client).__name__}")
    if isinstance(client, dg.PipesSubprocessClient):
        job_dir.mkdir(parents=True, exist_ok=True)
        path = job.write(job_dir / f"{job.stage['name']}.job.json")
        invocation = client.run(context=context, command=torchrun_command(gpus, str(path)))
    else:
        env = os.environ
        spec = k8s_pod_spec(gpus, volume_claim=env.get("PIXEL_TRAINING_PVC"),
                            mount_path=env.get("PIXEL_TRAINING_MOUNT") or str(job_dir.parent))
        invocation = client.run(context=context, image=env.get("PIXEL_TRAINER_IMAGE"),
                                command=torchrun_command(gpus, f"env:{JOB_ENV}", python="python"),
                                env={JOB_ENV: job.to_json()}, base_pod_spec=spec)
    reported = invocation.get_materialize_result()
    return {key: getattr(value, "value", value) for key, value in (reported.metadata or {}).items()}


def reported_metadata(figures: dict[str, Any]) -> str:
    """One log line of what the training process reported (no record content: figures and the URI)."""
    return json.dumps({k: figures.get(k) for k in ("steps", "train_loss", "eval_loss", "world_size", "uri")},
                      default=str)
