"""scripts/gpu-rehearsal.sh runs end to end with --tiny on the CPU (the GPU run itself needs a GPU):
train a packed stage, score, sample, and print the memory plan beside the figures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_rehearsal_runs_tiny_on_cpu(tmp_path):
    proc = subprocess.run([str(ROOT / "scripts" / "gpu-rehearsal.sh"), "--tiny", "--out", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=600, start_new_session=True,
                          env={**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""},
                          preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["train_steps"] == 2 and report["train_tokens_per_s"] > 0
    assert report["scoring"]["blocks"] == 2 and report["scoring"]["tokens"] > 0
    assert report["sampling"]["responses"] == 4
    assert report["plan"]["fits_h100"] and report["plan_peak_gib"] > 0
    assert "plan peak" in proc.stderr


def test_the_full_shape_plan_has_the_production_vocabulary():
    proc = subprocess.run([str(ROOT / "scripts" / "gpu-rehearsal.sh"), "--dry-run"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHON": sys.executable}, start_new_session=True,
                          preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert 0.9e9 < report["parameters"] < 1.5e9 and report["context"] == 8192
