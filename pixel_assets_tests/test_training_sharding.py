"""Per-GPU peak memory under ddp and fsdp, against figures worked out by hand (GB = 10^9 bytes)."""

import pytest

from pixel_assets.lib.training.sharding import (
    StageMemory,
    peaks_by_gpus,
    per_gpu_breakdown,
    per_gpu_peak,
    smallest_fitting_gpus,
)

GB = 10**9
# A 12B base in bf16 (24 GB), a LoRA of 0.1 GB, AdamW 0.4 GB, 20 GB activations, 2 GB scoring tile,
# a 5 GB evaluation pass, 0.6 GB per decoder layer.
NEMO = StageMemory(base_weights=24 * GB, lora_weights=GB // 10, lora_grads=GB // 10, optimizer_states=4 * GB // 10,
                   activations=20 * GB, scoring_tile=2 * GB, eval_pass=5 * GB, largest_layer=6 * GB // 10)
# A 70B base: 140 GB of bf16 weights, 80 layers of 1.75 GB.
SEVENTY = StageMemory(base_weights=140 * GB, lora_weights=4 * GB // 10, lora_grads=4 * GB // 10,
                      optimizer_states=16 * GB // 10, activations=20 * GB, scoring_tile=2 * GB, eval_pass=5 * GB,
                      largest_layer=175 * GB // 100)


def test_ddp_replicates_everything():
    # one GPU: 24 + 0.1 + 0.1 + 0.4 + max(20 + 2, 5) = 46.6 GB
    assert per_gpu_peak(NEMO, "ddp", 1) == 46_600_000_000
    # more GPUs: the same plus DDP's gradient buckets (0.1 GB): 46.7 GB, whatever N
    assert peaks_by_gpus(NEMO, "ddp") == {1: 46_600_000_000, 2: 46_700_000_000, 4: 46_700_000_000, 8: 46_700_000_000}


def test_fsdp_divides_the_resident_state_and_gathers_one_layer():
    # 2 GPUs: (24 + 0.1 + 0.1 + 0.4) / 2 = 12.3, + 0.6 gathered + 22 transient = 34.9 GB
    assert per_gpu_peak(NEMO, "fsdp", 2) == 34_900_000_000
    # 8 GPUs: 24.6 / 8 = 3.075 + 0.6 + 22 = 25.675 GB
    assert per_gpu_peak(NEMO, "fsdp", 8) == 25_675_000_000
    # prefetching the next layer holds two gathered: +0.6 GB
    assert per_gpu_peak(NEMO, "fsdp", 2, gathered_layers=2) == 35_500_000_000
    parts = per_gpu_breakdown(NEMO, "fsdp", 4)
    assert parts["base_weights"] == 6 * GB and parts["optimizer_states"] == GB // 10
    assert parts["peak"] == sum(v for k, v in parts.items() if k != "peak")


def test_evaluation_pass_counts_when_it_is_the_larger_transient():
    heavy_eval = StageMemory(base_weights=10 * GB, lora_weights=0, lora_grads=0, optimizer_states=0,
                             activations=3 * GB, scoring_tile=1 * GB, eval_pass=6 * GB)
    assert per_gpu_peak(heavy_eval, "ddp", 1) == 16 * GB  # 10 + max(3 + 1, 6)


def test_smallest_fitting_gpus_on_80_gb():
    assert smallest_fitting_gpus(NEMO, "ddp") == 1
    # 70B: ddp 140 + 0.4 + 0.4 + 1.6 + 22 = 164.4 GB on one GPU (164.8 with buckets): never fits
    assert per_gpu_peak(SEVENTY, "ddp", 1) == 164_400_000_000
    assert smallest_fitting_gpus(SEVENTY, "ddp") is None
    # fsdp: 2 GPUs 142.4/2 + 1.75 + 22 = 94.95 GB (no); 4 GPUs 35.6 + 1.75 + 22 = 59.35 GB (yes)
    assert peaks_by_gpus(SEVENTY, "fsdp")[2] == 94_950_000_000
    assert peaks_by_gpus(SEVENTY, "fsdp")[4] == 59_350_000_000
    assert smallest_fitting_gpus(SEVENTY, "fsdp") == 4
    assert smallest_fitting_gpus(SEVENTY, "fsdp", capacity=141 * GB) == 2  # an H200


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError, match="strategy must be one of ddp, fsdp"):
        per_gpu_peak(NEMO, "zero3", 2)
    with pytest.raises(ValueError, match="gpus must be a positive integer"):
        per_gpu_peak(NEMO, "fsdp", 0)
    with pytest.raises(ValueError, match="StageMemory.activations must be a whole number of bytes"):
        StageMemory(base_weights=1, lora_weights=0, lora_grads=0, optimizer_states=0, activations=-1)
