"""A memory probe started by a large parent measures its own peak: ru_maxrss would report the
parent's high-water mark (Linux carries it across fork and execve), so a peak over a baseline read
that way comes out near zero in a pytest worker that has trained models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource
from pixel_assets.lib.process_memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss
base_rusage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = current_rss_bytes(); reset_peak_rss()
block = bytearray(256 * 2**20)
for i in range(0, len(block), 4096): block[i] = 1
del block
print(json.dumps({"gain": peak_rss_bytes() - base,
                  "rusage_gain": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_rusage}))
"""


def _child_from_a_parent_holding(parent_bytes: int) -> dict:
    held = bytearray(parent_bytes)
    for i in range(0, len(held), 4096):
        held[i] = 1
    # preexec_fn forces fork (not vfork/posix_spawn), the way the project's probes are started
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    assert proc.returncode == 0, proc.stderr[-2000:]
    del held
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_child_of_a_large_parent_measures_its_own_256_mib():
    result = _child_from_a_parent_holding(1 << 30)  # resident at fork: what the child inherits
    assert 240 * 2**20 <= result["gain"] <= 320 * 2**20, result
    # the trap this module exists for: the inherited high-water mark hides the child's allocation
    assert result["rusage_gain"] < 64 * 2**20, result
