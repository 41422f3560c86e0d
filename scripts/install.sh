#!/usr/bin/env bash
# Create (or reuse) .venv and install the project. torch==2.13.0 goes first, from the index that
# PIXEL_TORCH_INDEX names, so that pip never resolves torch itself (on Linux, PyPI's torch is the
# CUDA build: GBs of CUDA wheels a CPU machine does not need):
#   PIXEL_TORCH_INDEX unset  the CPU build: a torch 2.13.0 wheel pip already finds without an index
#                            (pip's find-links, e.g. /opt/wheels on the project's build machine), else
#                            https://download.pytorch.org/whl/cpu
#   PIXEL_TORCH_INDEX=cpu    https://download.pytorch.org/whl/cpu, always
#   PIXEL_TORCH_INDEX=cu126  a CUDA build for a GPU machine (any tag PyTorch publishes: cu118, cu126, cu128, ...)
#   PIXEL_TORCH_INDEX=pip    pip's own configuration (PyPI or your mirror), as it resolves torch
#   PIXEL_TORCH_INDEX=https://...  any other index URL
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-}"
TORCH="torch==2.13.0"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
choice="${PIXEL_TORCH_INDEX:-}"
if [ -z "$choice" ] && python -m pip install --quiet --dry-run --no-index --no-deps "$TORCH" >/dev/null 2>&1; then
  choice=pip  # a local wheel (find-links): no index needed
fi
case "${choice:-cpu}" in
  pip) index=() ;;
  http://*|https://*|file://*) index=(--index-url "$choice") ;;
  *) index=(--index-url "https://download.pytorch.org/whl/${choice:-cpu}") ;;
esac
echo "installing $TORCH ${index[*]:-(from the pip configuration: a local wheel or your index)}"
python -m pip install --quiet "${index[@]}" "$TORCH"
python -m pip install --quiet -e ".${EXTRAS}"
