#!/usr/bin/env bash
# The GPU rehearsal in one command (pixel_assets/lib/training/rehearsal.py): a ~1B Mistral-shaped model
# with the production vocabulary built locally, a packed stage trained with production settings,
# scoring at 8,192 tokens, 64 sampled responses; prints tokens/s, MFU and peak GPU memory next to
# the memory plan's estimate. Options: --tiny (CPU smoke test), --dry-run (plan only), --out DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1 WANDB_MODE=offline PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m pixel_assets.lib.training.rehearsal "$@"
