#!/usr/bin/env bash
# One command from a fresh clone: install with test extras, validate the code location, run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh "[test]"
. .venv/bin/activate
export HF_HUB_OFFLINE=1 WANDB_MODE=offline
dagster definitions validate -w workspace.yaml
exec python -m pytest -n 2 --durations=15 "$@"
