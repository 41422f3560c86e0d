"""Per-GPU peak memory of one stage at 1, 2, 4 or 8 GPUs under its strategy, and the smallest
number of GPUs that holds it (pure arithmetic over the memory plan's per-component bytes).

- ddp: every GPU holds everything (frozen weights, LoRA weights, gradients, AdamW states) plus
  DDP's gradient buckets (one more copy of the trainable gradients); activations are those of the
  per-device batch, which the curriculum fixes (the global batch grows through world size and
  smaller accumulation, not through a bigger per-device batch), so they do not shrink with N.
- fsdp (full shard): weights, gradients and optimizer states are split N ways; while a wrapped
  layer runs, its full weights are gathered (`gathered_layers` of them at once: 1 without
  prefetch); activations as in ddp.

Training and evaluation do not overlap in time, so the peak is the larger of the training
transient (activations + scoring tile) and the evaluation pass, on top of what is resident.
"""

from __future__ import annotations

from dataclasses import dataclass

GPU_CHOICES = (1, 2, 4, 8)
H100_BYTES = 80 * 10**9  # "80 GB": slightly under what the card reports (81,559 MiB), as headroom
STRATEGIES = ("ddp", "fsdp")


@dataclass(frozen=True)
class StageMemory:
    """One stage's memory by component on one GPU, in bytes (what the memory plan computes)."""

    base_weights: int  # frozen base model in bf16
    lora_weights: int
    lora_grads: int
    optimizer_states: int  # AdamW first and second moments (fp32) of the LoRA weights
    activations: int  # one per-device micro-batch (with the stage's gradient checkpointing)
    scoring_tile: int = 0  # the loss's logits tile (no full (batch, seq, vocab) tensor)
    eval_pass: int = 0  # the evaluation pass's transient
    largest_layer: int = 0  # one decoder layer's full bf16 weights (what FSDP gathers at a time)

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"StageMemory.{name} must be a whole number of bytes >= 0, got {value!r}")


def _ceil_div(value: int, n: int) -> int:
    return -(-value // n)


def per_gpu_breakdown(memory: StageMemory, strategy: str, gpus: int, *, gathered_layers: int = 1) -> dict[str, int]:
    """Bytes per GPU by component at `gpus` GPUs; "peak" is their peak sum."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not isinstance(gpus, int) or gpus < 1:
        raise ValueError(f"gpus must be a positive integer, got {gpus!r}")
    resident = {"base_weights": memory.base_weights, "lora_weights": memory.lora_weights,
                "lora_grads": memory.lora_grads, "optimizer_states": memory.optimizer_states}
    if strategy == "fsdp" and gpus > 1:
        out = {k: _ceil_div(v, gpus) for k, v in resident.items()}
        out["gathered_layers"] = gathered_layers * memory.largest_layer
    else:
        out = dict(resident)
        if gpus > 1:  # DDP's reducer keeps its own flat copy of the gradients
            out["ddp_buckets"] = memory.lora_grads
    transient = max(memory.activations + memory.scoring_tile, memory.eval_pass)
    out["activations_or_eval"] = transient
    out["peak"] = sum(out.values())
    return out


def per_gpu_peak(memory: StageMemory, strategy: str, gpus: int, *, gathered_layers: int = 1) -> int:
    return per_gpu_breakdown(memory, strategy, gpus, gathered_layers=gathered_layers)["peak"]


def peaks_by_gpus(memory: StageMemory, strategy: str, choices=GPU_CHOICES, **kwargs) -> dict[int, int]:
    """{1: peak, 2: peak, 4: peak, 8: peak} bytes per GPU."""
    return {n: per_gpu_peak(memory, strategy, n, **kwargs) for n in choices}


def smallest_fitting_gpus(memory: StageMemory, strategy: str, *, capacity: int = H100_BYTES,
                          choices=GPU_CHOICES, **kwargs) -> int | None:
    """The fewest GPUs of `capacity` bytes each that hold the stage; None when even the most does not
    (under ddp more GPUs never lower the per-GPU peak: a stage that does not fit one needs fsdp)."""
    for n in sorted(choices):
        if per_gpu_peak(memory, strategy, n, **kwargs) <= capacity:
            return n
    return None
