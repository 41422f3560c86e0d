"""Helpers for the multi-process trainer tests: a tiny stage as a TrainJob, and torchrun runs of it
(gloo on CPU, one thread per rank) in their own process group so a test can kill them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from pixel_assets_tests import sft_fixtures as f

STAGE = "stage1_foundation"


def tiny_stage(gpus: int = 2, **changes):
    """A 4-step SFT stage, global batch 2 x 2 = 4, saved every 2 steps."""
    from pixel_assets.lib.training.curriculum import StageConfig

    values = dict(name=STAGE, kind="sft", families={"demo": 1.0}, learning_rate=1e-3, max_length=256,
                  per_device_batch_size=2, gradient_accumulation_steps=2, max_steps=4, eval_steps=2, save_steps=2,
                  early_stopping_patience=100, gpus_per_stage=gpus, seed=3)
    values.update(changes)
    return StageConfig(**values)


def tiny_job(root: Path, base: Path, data: Path, name: str, stage=None, force_cpu: bool = True, **values):
    """A TrainJob on the tiny base; LoRA dropout off: each rank draws its own dropout masks, so only
    without dropout can a 2-process run equal a 1-process run."""
    from pixel_assets.lib.training.distributed import TrainJob

    job = TrainJob.for_stage(stage or tiny_stage(), base=str(base), data_dir=str(data), out_dir=str(root / name),
                             force_cpu=force_cpu, overrides={"lora_dropout": 0.0}, result_path=str(root / f"{name}.json"),
                             **values)
    return job.write(root / f"{name}.job.json")


def tiny_inputs(root: Path) -> tuple[Path, Path]:
    base = f.tiny_base(root / "base")
    f.stage_files(root / "data", n_train=16, n_val=8)  # 8 val rows: 4 per rank at batch 2, no padded duplicates
    return base, root / "data"


def env() -> dict[str, str]:
    repo = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": repo, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}


def _default_signals() -> None:
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(job: Path, nproc: int, sleep_s: float = 0.0) -> subprocess.Popen:
    """torchrun --nproc_per_node nproc on the job (nproc 0: the entry module alone, no torchrun)."""
    module = ["-m", "pixel_assets_tests.dist_fixtures", str(job), str(sleep_s)]
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc else []
    return subprocess.Popen([sys.executable, *launcher, *module], env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=_default_signals)


def run(job: Path, nproc: int, timeout: float = 300) -> str:
    proc = start(job, nproc)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-4000:]
    return out


def adapter(out_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(out_dir) / "adapter_model.safetensors"))


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def main(argv: list[str]) -> int:
    """`python -m pixel_assets_tests.dist_fixtures JOB SLEEP_S`: the distributed entry, sleeping after
    each step (so a test can kill a rank between saved steps)."""
    from pixel_assets.lib.training.distributed import main as entry

    job, sleep_s = argv
    callbacks = [f.slow_callback(float(sleep_s))] if float(sleep_s) else []
    return entry([job], callbacks=callbacks)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
