"""The trainer under torchrun on CPU (gloo, one thread per rank), on the tiny model: a 2-process run
of a stage trains the same adapter as a 1-process run with the same global batch and seed, and a
rank killed mid-stage resumes, on both ranks, from the last saved step. One 1-process baseline per
module; 4 optimizer steps of global batch 4."""

from __future__ import annotations

import json
import os
import signal

import psutil
import pytest

from pixel_assets.lib.training.progress import CHECKPOINT_PREFIX, PROGRESS_DIR, TRAINED_MARKER, complete_checkpoints
from pixel_assets_tests import dist_fixtures as d

# Same global batch, same data order, dropout off: the runs differ only in how the two micro-batches'
# gradients are summed (accumulated in one process vs all-reduced over gloo), i.e. float32 rounding.
# LoRA weights here are ~0.1 after 4 steps at lr 1e-3; 1e-5 is far below one step's change (~1e-3).
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    base, data = d.tiny_inputs(root)
    d.run(d.tiny_job(root, base, data, "one"), nproc=0)  # one process, accumulation 2
    return root, base, data


def test_two_processes_train_the_same_adapter_as_one(tiny):
    root, base, data = tiny
    out = d.run(d.tiny_job(root, base, data, "two"), nproc=2)  # two processes, accumulation 1 each
    assert "[rank 0/2]" in out and "[rank 1/2]" in out
    assert "placement: 2 process(es), strategy ddp, accelerate MULTI_CPU" in out
    one, two = (json.loads((root / f"{n}.json").read_text()) for n in ("one", "two"))
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one["steps"] == two["steps"] == 4 and one["tokens_seen"] == two["tokens_seen"]
    baseline, adapter = d.adapter(root / "one"), d.adapter(root / "two")
    assert max(float(t.abs().max()) for k, t in baseline.items() if "lora_B" in k) > 1e-3  # it did train
    difference = d.max_difference(baseline, adapter)
    print(f"max |adapter(2 processes) - adapter(1 process)| = {difference:.3g} (tolerance {TOLERANCE})")
    assert difference <= TOLERANCE
    assert abs(one["eval_loss"] - two["eval_loss"]) <= 1e-4
    # _progress stays until the checkpoint is published (no store here); rank 0 recorded the result
    assert (root / "two" / PROGRESS_DIR / TRAINED_MARKER).is_file()


def _rank_process(torchrun: psutil.Process, rank: int) -> psutil.Process:
    for child in torchrun.children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank):
                return child
        except psutil.Error:
            continue
    raise AssertionError(f"no worker with RANK={rank}")


def test_a_killed_rank_resumes_both_ranks_from_the_last_saved_step(tiny):
    root, base, data = tiny
    job = d.tiny_job(root, base, data, "killed")
    proc = d.start(job, nproc=2, sleep_s=1.5)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if f"[rank 0/2] [{d.STAGE}] saved {CHECKPOINT_PREFIX}2" in line:
                break
        os.kill(_rank_process(psutil.Process(proc.pid), 1).pid, signal.SIGKILL)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0, "".join(seen)[-3000:]
    out_dir = root / "killed"
    assert not (out_dir / "adapter_model.safetensors").exists()  # the stage did not finish
    saved = complete_checkpoints(out_dir / PROGRESS_DIR)
    last = int(saved[-1].name[len(CHECKPOINT_PREFIX):])
    assert 2 <= last < 4

    out = d.run(job, nproc=2)
    for rank in (0, 1):
        assert f"[rank {rank}/2] [{d.STAGE}] training resuming from step {last} of 4" in out, out[-3000:]
    result = json.loads((root / "killed.json").read_text())
    assert result["resumed_from_step"] == last and result["steps"] == 4
    difference = d.max_difference(d.adapter(root / "one"), d.adapter(out_dir))
    print(f"max |adapter(killed and resumed, 2 processes) - adapter(1 process)| = {difference:.3g}")
    assert difference <= TOLERANCE


def test_fsdp_settings_are_valid_training_arguments(tmp_path):
    """accelerate applies FSDP on GPUs only (on CPU a `fsdp` stage runs data parallel and the entry
    logs so), so here the settings are checked as TrainingArguments turn them into accelerate's FSDP
    plugin; scripts/rehearse_multi_gpu.sh runs them on GPUs."""
    from trl import SFTConfig

    from pixel_assets.lib.training.distributed import fsdp_trainer_args

    assert fsdp_trainer_args("ddp", 2) == {} and fsdp_trainer_args("fsdp", 1) == {}
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, **fsdp_trainer_args("fsdp", 2))
    plugin = args.fsdp_plugin_args
    assert plugin["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"  # decoder layers; LoRA layers added for PEFT
    assert plugin["state_dict_type"] == "FULL_STATE_DICT"  # rank 0 saves a plain adapter
    assert plugin["fsdp_version"] == 2 and plugin["reshard_after_forward"] is True  # full shard
    assert plugin["activation_checkpointing"] is True and not args.gradient_checkpointing
