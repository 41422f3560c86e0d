"""Which process this is when a stage trains under ``torchrun`` (one process per GPU), and the few
collective steps the trainers need around HF Trainer: rank 0 prepares the progress folder and the
others learn the checkpoint to resume from, so every rank resumes from the same step.

Without torchrun (WORLD_SIZE unset) everything here is the single-process identity: rank 0 of 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def _group_ready() -> bool:
    import torch.distributed as dist

    return world_size() > 1 and dist.is_available() and dist.is_initialized()


def init(cpu: bool) -> None:
    """Join the process group torchrun set up (gloo on CPU, NCCL on GPUs) and pin this rank's GPU,
    so `"cuda"` means this rank's device when the model loads. HF Trainer (through accelerate)
    reuses the group. No-op in a single process."""
    if world_size() == 1:
        return
    import torch
    import torch.distributed as dist

    if not cpu and torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
    if not dist.is_initialized():
        dist.init_process_group("gloo" if cpu or not torch.cuda.is_available() else "nccl")


def barrier() -> None:
    if _group_ready():
        import torch.distributed as dist

        dist.barrier()


def from_main(compute: Callable[[], T]) -> T:
    """``compute()`` on rank 0 only (e.g. clearing stale progress); every rank gets its result."""
    value: Any = compute() if is_main() else None
    if not _group_ready():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
