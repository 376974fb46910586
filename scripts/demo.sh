#!/usr/bin/env bash
# The main job (README "Set-up: two commands"): the shipped default model
# (models/mobilenet_v2-coco-voc-mini, MobileNetV2 CSRA trained on real COCO and VOC images, Max head) run by
# csra-edge on the demo photos beside it, one JSON line per photo with its labels and per-stage
# timings. No camera, no libtorch, no data beyond the clone.
#
#   ./scripts/demo.sh                          # the demo photos
#   ./scripts/demo.sh 'photos/*.jpg' --topk 3  # any file, folder or glob, then csra-edge flags
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ensure_apt_packages libclang-dev

step "building csra-edge (release)"
cargo build --release --quiet -p csra-edge --bin csra-edge
edge=${CARGO_TARGET_DIR:-target}/release/csra-edge

input=${1:-models/mobilenet_v2-coco-voc-mini/demo}
step "csra-edge --input $input"
exec "$edge" --input "$input" "${@:2}"
