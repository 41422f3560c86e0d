#!/usr/bin/env bash
# Create (or reuse) .venv and install the project. torch==2.13.0 goes first: its CPU build is on
# disk here; any other torch resolution would download GBs of CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".${EXTRAS}"
