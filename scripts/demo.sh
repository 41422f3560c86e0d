#!/usr/bin/env bash
# One command from a fresh clone: install, then run the whole asset graph on the demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 WANDB_MODE=offline
exec pixel demo "$@"
