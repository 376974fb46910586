#!/usr/bin/env bash
# The paper's ablations in miniature (issue 14, docs/results.md): trains MobileNetV2 CSRA and
# GAP-baseline models on voc2007-mini and coco-mini with the official recipe and writes the
# page with its tables and plots: 30 runs (2 seeds for every row), about 40 minutes on 2 cores.
#
#   ./scripts/paper-tables.sh                      # everything, resuming what is there
#   ./scripts/paper-tables.sh --page-only          # rewrite the page from the runs there are
#   ./scripts/paper-tables.sh --ablation-seeds 1   # other flags go to `csra-host paper-tables`
#
# Runs go to runs/paper/ (RUNS=DIR to change); interrupt it at any time and run it again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ensure_python_venv torch
use_python_venv

step "building csra-host (release)"
cargo build --release --quiet -p csra-host
host=${CARGO_TARGET_DIR:-target}/release/csra-host

"$host" paper-tables --data "${CSRA_DATA_DIR:-../shared/data}" --runs "${RUNS:-runs/paper}" \
    --out docs/results.md "$@"
