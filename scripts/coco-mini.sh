#!/usr/bin/env bash
# The main job (README "Run it"): fine-tunes the shipped ImageNet MobileNetV2 on the real
# coco-mini train2017 split and scores it on val2017, as the README's results table reports.
#
#   ./scripts/coco-mini.sh            # CSRA H=1 λ=0.1, then the GAP baseline, then the baseline
#                                     # with the training-free Max head (λ=0.2): ~9 min on 2 cores
#   ./scripts/coco-mini.sh csra       # only the CSRA model
#
# Runs go to runs/coco-mini-<variant>/ (RUNS=DIR to change). A run that already has a
# checkpoint is resumed, so an interrupted job continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ensure_python_venv torch
use_python_venv

data=${CSRA_DATA_DIR:-../shared/data}
runs=${RUNS:-runs}
which=${1:-all}

step "building csra-host (release)"
cargo build --release --quiet -p csra-host
host=${CARGO_TARGET_DIR:-target}/release/csra-host

recipe=(
    --data "$data/coco-mini" --arch mobilenet_v2
    --pretrained "$data/weights/mobilenet_v2_imagenet.safetensors"
    --normalize tf --freeze-bn --image-size 224 --batch-size 16 --epochs 12 --step-size 4
)

# train NAME HEAD-FLAGS...: trains into $runs/NAME, or resumes it.
train() {
    local name=$1 dir=$runs/$1
    shift
    step "training $name"
    if [[ -f $dir/latest.json ]]; then
        "$host" train --resume "$dir"
    else
        "$host" train "${recipe[@]}" "$@" --out "$dir"
    fi
}

# evaluate NAME REPORT HEAD-FLAGS...: scores $runs/NAME on val2017.
evaluate() {
    local name=$1 report=$2
    shift 2
    step "evaluating $name $*"
    "$host" eval "$runs/$name" "$@" --report "$runs/$report.json"
}

if [[ $which == all || $which == csra ]]; then
    train coco-mini-csra --head csra --heads 1 --lambda 0.1
    evaluate coco-mini-csra eval-csra
fi
if [[ $which == all || $which == baseline ]]; then
    train coco-mini-baseline --head baseline
    evaluate coco-mini-baseline eval-baseline
    evaluate coco-mini-baseline eval-baseline-max --head max --lambda 0.2
fi
