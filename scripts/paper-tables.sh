#!/usr/bin/env bash
# The paper's ablations in miniature (issue 14, docs/results.md): trains MobileNetV2 CSRA and
# GAP-baseline models on voc2007-mini and coco-mini with the official recipe and writes the
# page with its tables and plots. The committed page is `--seeds 4 --ablation-seeds 1` (4 seeds
# for the main rows, 1 for the ablations): 27 runs, 102 minutes on the 2-core machine; the
# default of 2 seeds everywhere is 30 runs. `--pytorch-reference scripts/pytorch_reference.py`
# adds the VOC main rows trained by plain PyTorch with the same seeds (about 10 minutes a run).
#
#   ./scripts/paper-tables.sh --seeds 4 --ablation-seeds 1   # the committed page, resuming
#   ./scripts/paper-tables.sh --seeds 4 --ablation-seeds 1 --page-only   # rewrite it only
#   ./scripts/paper-tables.sh --pytorch-reference scripts/pytorch_reference.py   # add PyTorch
#
# Runs go to runs/paper/ (RUNS=DIR to change); interrupt it at any time and run it again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# The PyTorch reference needs torchvision too, which test.txt adds to torch.txt.
if [[ " $* " == *" --pytorch-reference"* ]]; then
    ensure_python_venv test
else
    ensure_python_venv torch
fi
use_python_venv

step "building csra-host (release)"
cargo build --release --quiet -p csra-host
host=${CARGO_TARGET_DIR:-target}/release/csra-host

"$host" paper-tables --data "${CSRA_DATA_DIR:-../shared/data}" --runs "${RUNS:-runs/paper}" \
    --out docs/results.md "$@"
