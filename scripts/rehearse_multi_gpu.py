"""GPU rehearsal of multi-GPU training (run from a checkout on a machine with 2+ GPUs):

    python scripts/rehearse_multi_gpu.py --gpus 2

On the tiny model: one process (accumulation N) vs torchrun N processes under ddp and under fsdp
(accumulation 1 each, same global batch and seed). Prints each run's placement line (accelerate's
DistributedType: FSDP must read FSDP) and the largest adapter difference from the one-process run
(bf16 on GPUs: differences of ~1e-3 are rounding; the CPU tests assert exact agreement in fp32).
Exits non-zero when fsdp did not shard or a difference exceeds --tolerance.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pixel_assets_tests import dist_fixtures as d  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=2e-2)
    args = parser.parse_args()
    n, failed = args.gpus, False
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base, data = d.tiny_inputs(root)
        stage = lambda strategy: d.tiny_stage(gpus=n, strategy=strategy, gradient_accumulation_steps=n)  # noqa: E731
        d.run(d.tiny_job(root, base, data, "one", stage=stage("ddp"), force_cpu=False), nproc=0)
        baseline = d.adapter(root / "one")
        for strategy in ("ddp", "fsdp"):
            out = d.run(d.tiny_job(root, base, data, strategy, stage=stage(strategy), force_cpu=False), nproc=n)
            placement = re.search(r"\[rank 0/\d+\] placement: .*", out)
            difference = d.max_difference(baseline, d.adapter(root / strategy))
            print(f"{strategy}: {placement.group(0) if placement else 'no placement line'}; "
                  f"max |adapter - 1-process adapter| = {difference:.3g}")
            if strategy == "fsdp" and (not placement or "accelerate FSDP" not in placement.group(0)):
                failed = True
            failed |= difference > args.tolerance
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
