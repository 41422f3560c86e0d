"""Peak GPU memory of a training stage, planned from the base's ``config.json`` alone (the model is
built on the meta device: parameter counts, no weights), before anything is launched.

One breakdown per stage, component by component (bytes), so other plans can be built from the same
parts (per-GPU figures under data or fully sharded parallelism divide some parts and not others):

- ``weights``: the frozen base in the training dtype (bf16 on a GPU);
- ``lora_weights`` / ``lora_grads`` / ``optimizer_states``: the adapter in fp32 (PEFT keeps adapter
  weights in fp32 under bf16), its gradients, and AdamW's two moments;
- ``activations``: under (non-reentrant) gradient checkpointing, each layer's input kept for the
  backward pass plus one layer's activations recomputed at a time, at the stage's micro-batch and
  context (with a fused attention kernel: no sequence x sequence scores);
- ``scoring_tile``: TRL's fused LM head, one tile (up to 4,096 tokens x vocabulary) of fp32
  log-softmax work and the hidden states it scores, never the full (batch, sequence, vocabulary) logits;
- ``evaluation``: the evaluation pass (no gradients, one layer's activations at a time, the token
  budget of ``evaluation.evaluate_records``);
- ``overhead``: CUDA context, kernels' workspaces and allocator fragmentation.

``peak`` = weights + adapter state + the larger of (training step, evaluation pass) + overhead.
The tile coefficients are calibrated against measured CPU peaks (memory_calibration_probe.py, README).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

GIB = 2**30
H100_BYTES = 80 * 10**9  # an H100 SXM's 80 GB
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
# Bytes kept per token and layer while one layer is recomputed, in units of the dtype's size:
# norms' inputs, q/k/v/o projections' inputs and outputs, the attention output and softmax statistics
# (ACT_HIDDEN x hidden), the MLP's gate, up, activation and product (ACT_INTERMEDIATE x intermediate).
ACT_HIDDEN = 12
ACT_INTERMEDIATE = 4
TILE_TOKENS = 4096  # trl.kernels.chunked_logprob.TOKEN_CHUNK_SIZE: tokens per LM-head tile
# fp32 bytes per tile row, in units of the vocabulary: measured (CPU, TRL's torch path of the fused
# head) as about 2.2 x (tokens x vocabulary x 4 B) in a training step (forward and backward) and about
# 1 x in a no-grad scoring pass. The Triton path on a GPU works on (4096 x 32768) slices in place, so
# these figures are an upper bound there (not measured on a GPU yet).
TRAIN_TILE_COPIES = 2.25
EVAL_TILE_COPIES = 1.1
OVERHEAD_BYTES = 3 * GIB  # CUDA context (~0.5 GiB), cuBLAS/attention workspaces, fragmentation
EVAL_TOKEN_BUDGET = 16_384  # evaluation.DEFAULT_TOKEN_BUDGET


@dataclass(frozen=True)
class ModelShape:
    parameters: int
    lora_parameters: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    vocab_size: int
    max_position_embeddings: int


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per component and the peak, for one stage on one GPU."""

    weights: int
    lora_weights: int
    lora_grads: int
    optimizer_states: int
    activations: int
    scoring_tile: int
    evaluation: int
    overhead: int
    peak: int

    @property
    def training_step(self) -> int:
        """Bytes of a training step alone (no evaluation pass, no overhead)."""
        return (self.weights + self.lora_weights + self.lora_grads + self.optimizer_states + self.activations
                + self.scoring_tile)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"{k}_gib": round(v / GIB, 2) for k, v in asdict(self).items()}
        out["peak_gib"] = round(self.peak / GIB, 2)
        out["fits_h100"] = self.peak <= H100_BYTES
        return out


def model_shape(config_path: str | Path, lora_r: int = 16) -> ModelShape:
    """Parameter counts of the base described by ``config.json`` (built on the meta device)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    path = Path(config_path)
    config = AutoConfig.from_pretrained(str(path.parent if path.name == "config.json" else path), local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    lora = sum(lora_r * (m.in_features + m.out_features) for name, m in model.named_modules()
               if name.rsplit(".", 1)[-1] in LORA_TARGETS and hasattr(m, "in_features"))
    text = config.get_text_config()
    return ModelShape(parameters=params, lora_parameters=lora, hidden_size=text.hidden_size,
                      intermediate_size=text.intermediate_size, num_layers=text.num_hidden_layers,
                      vocab_size=text.vocab_size, max_position_embeddings=text.max_position_embeddings)


def plan_memory(shape: ModelShape, *, batch: int, context: int, sequences_per_example: int = 1,
                dtype_bytes: int = 2, gradient_checkpointing: bool = True, overhead: int = OVERHEAD_BYTES,
                eval_token_budget: int = EVAL_TOKEN_BUDGET) -> MemoryBreakdown:
    """The breakdown for micro-batches of ``batch`` examples of ``context`` tokens (a preference pair
    is ``sequences_per_example=2``: chosen and rejected in one forward)."""
    tokens = batch * context * sequences_per_example
    h, inter, layers = shape.hidden_size, shape.intermediate_size, shape.num_layers
    per_layer = tokens * (ACT_HIDDEN * h + ACT_INTERMEDIATE * inter) * dtype_bytes
    kept = tokens * h * dtype_bytes * (layers if gradient_checkpointing else 0)
    activations = kept + (per_layer if gradient_checkpointing else per_layer * layers)
    tile = int(min(tokens, TILE_TOKENS) * shape.vocab_size * 4 * TRAIN_TILE_COPIES)
    scoring = tile + 2 * tokens * h * 4  # the fp32 hidden states and their gradient
    eval_tokens = max(min(eval_token_budget, context * 8), context)
    evaluation = eval_tokens * (ACT_HIDDEN * h + ACT_INTERMEDIATE * inter) * dtype_bytes + \
        int(min(eval_tokens, TILE_TOKENS) * shape.vocab_size * 4 * EVAL_TILE_COPIES)
    weights = shape.parameters * dtype_bytes
    lora = shape.lora_parameters * 4
    fixed = weights + lora * 4  # weights, gradients, two AdamW moments
    peak = fixed + max(activations + scoring, evaluation) + overhead
    return MemoryBreakdown(weights=weights, lora_weights=lora, lora_grads=lora, optimizer_states=2 * lora,
                           activations=activations, scoring_tile=scoring, evaluation=evaluation, overhead=overhead,
                           peak=peak)


def stage_memory(shape: ModelShape, stage: Any) -> MemoryBreakdown:
    """The breakdown for a curriculum StageConfig on one GPU (bf16, gradient checkpointing)."""
    return plan_memory(shape, batch=stage.per_device_batch_size, context=stage.max_length,
                       sequences_per_example=2 if getattr(stage, "kind", "sft") == "preference" else 1)


def fitting_setting(shape: ModelShape, stage: Any, limit: int = H100_BYTES) -> str | None:
    """The change that makes an over-budget stage fit (smaller micro-batch, the effective batch kept
    through gradient accumulation; then a shorter context), or None when even that does not fit."""
    batch, accumulation = stage.per_device_batch_size, stage.gradient_accumulation_steps
    sequences = 2 if getattr(stage, "kind", "sft") == "preference" else 1
    while batch > 1:
        batch //= 2
        if plan_memory(shape, batch=batch, context=stage.max_length, sequences_per_example=sequences).peak <= limit:
            effective = stage.per_device_batch_size * accumulation
            return (f"per_device_batch_size: {batch} with gradient_accumulation_steps: {math.ceil(effective / batch)} "
                    f"(same effective batch {effective})")
    context = stage.max_length
    while context > 512:
        context //= 2
        if plan_memory(shape, batch=1, context=context, sequences_per_example=sequences).peak <= limit:
            return f"per_device_batch_size: 1 and max_length: {context}"
    return None


def sharding_input(shape: ModelShape, breakdown: MemoryBreakdown, dtype_bytes: int = 2):
    """The same stage as sharding.StageMemory: what FSDP can split (weights, adapter state) apart from
    what each GPU holds whole (activations, scoring tile, evaluation; the overhead with them), and one
    decoder layer's weights (what FSDP gathers at a time)."""
    from pixel_assets.lib.training.sharding import StageMemory

    embeddings = 2 * shape.vocab_size * shape.hidden_size  # input embeddings and LM head, not in a layer
    layer = max(shape.parameters - embeddings, 0) // max(shape.num_layers, 1) * dtype_bytes
    return StageMemory(base_weights=breakdown.weights, lora_weights=breakdown.lora_weights,
                       lora_grads=breakdown.lora_grads, optimizer_states=breakdown.optimizer_states,
                       activations=breakdown.activations + breakdown.overhead, scoring_tile=breakdown.scoring_tile,
                       eval_pass=breakdown.evaluation + breakdown.overhead, largest_layer=layer)


def memory_plan(config_path: str | Path, stages: Any) -> dict[str, dict[str, Any]]:
    """{stage: memory dict} for the curriculum's stages: the one-GPU breakdown (peak_gib, components,
    fits_h100), the per-GPU peak at 1/2/4/8 GPUs under ddp and fsdp with the fewest GPUs that hold
    the stage, and `fits` at the stage's own gpus_per_stage and strategy (with the fix when it does not)."""
    from pixel_assets.lib.training import sharding

    shape = model_shape(config_path)
    out = {}
    for stage in stages:
        breakdown = stage_memory(shape, stage)
        row = breakdown.as_dict()
        per_gpu = sharding_input(shape, breakdown)
        row["per_gpu_peak_gib"] = {strategy: {n: round(peak / GIB, 2) for n, peak in
                                              sharding.peaks_by_gpus(per_gpu, strategy).items()}
                                   for strategy in sharding.STRATEGIES}
        row["smallest_gpus"] = {strategy: sharding.smallest_fitting_gpus(per_gpu, strategy, capacity=H100_BYTES)
                                for strategy in sharding.STRATEGIES}
        gpus, strategy = getattr(stage, "gpus_per_stage", 1), getattr(stage, "strategy", "ddp")
        configured = breakdown.peak if gpus == 1 else sharding.per_gpu_peak(per_gpu, strategy, gpus)
        row["configured"] = {"gpus": gpus, "strategy": strategy, "peak_gib": round(configured / GIB, 2)}
        row["fits"] = configured <= H100_BYTES
        if not row["fits"]:
            row["fix"] = fitting_setting(shape, stage)
        out[stage.name] = row
    return out


class MemoryPlanError(ValueError):
    """A stage that cannot fit one GPU; the message names the stage and what would make it fit."""


def check_memory_plan(plan: dict[str, dict[str, Any]], base: str) -> None:
    bad = [(name, row) for name, row in plan.items() if not row.get("fits", row["fits_h100"])]
    if not bad:
        return
    lines = []
    for name, row in bad:
        fsdp = (row.get("smallest_gpus") or {}).get("fsdp")
        sharded = f"gpus_per_stage: {fsdp} with strategy: fsdp" if fsdp else None
        fix = " or ".join(f for f in (row.get("fix"), sharded) if f) or (
            "no batch, context or sharding over 8 GPUs fits: the weights alone are "
            f"{row['weights_gib']} GiB (a smaller base)")
        where = row.get("configured") or {"gpus": 1, "strategy": "ddp", "peak_gib": row["peak_gib"]}
        lines.append(f"stage {name!r}: estimated peak {where['peak_gib']} GiB per GPU > 80 GB on "
                     f"{where['gpus']} H100 ({where['strategy']}); to fit: {fix}")
    raise MemoryPlanError(f"curriculum does not fit the GPU for base {base}:\n  " + "\n  ".join(lines))

