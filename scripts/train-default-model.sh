#!/usr/bin/env bash
# Trains and exports the shipped default model, models/mobilenet_v2-coco-voc-mini (its
# MODEL_CARD.md reports what this prints): MobileNetV2 + CSRA (H=1, λ=0.1) on every real
# labelled image we have — coco-mini train2017, coco-extra and voc2007-mini trainval, 1321
# images mapped onto the 80 COCO classes (VOC images are ignored, not negative, on the 60
# classes VOC does not label) — then exports the fast max head (λ=0.2) and scores the
# checkpoint and the exported file on coco-mini val2017 and on voc2007-mini test (its 20
# classes, through the same name mapping). About 20 minutes on 2 cores.
#
#   ./scripts/train-default-model.sh            # into runs/default-model, then the export
#   OUT=exports/my-model ./scripts/train-default-model.sh
#
# An interrupted run is resumed; the export is written to a temporary folder and moved into
# place only when it verified against tch.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ensure_python_venv torch
use_python_venv

data=${CSRA_DATA_DIR:-../shared/data}
run=${RUN:-runs/default-model}
out=${OUT:-models/mobilenet_v2-coco-voc-mini}

step "building csra-host (release)"
cargo build --release --quiet -p csra-host
host=${CARGO_TARGET_DIR:-target}/release/csra-host

step "training $run"
if [[ -f $run/latest.json ]]; then
    "$host" train --resume "$run"
else
    "$host" train \
        --data "$data/coco-mini:train2017" --data "$data/coco-extra:train" \
        --data "$data/voc2007-mini:trainval" --val-data "$data/coco-mini:val2017" \
        --arch mobilenet_v2 --pretrained "$data/weights/mobilenet_v2_imagenet.safetensors" \
        --normalize tf --freeze-bn --image-size 224 --batch-size 16 --epochs 12 --step-size 4 \
        --head csra --heads 1 --lambda 0.1 --seed 0 --out "$run"
fi

for set in "coco-mini:val2017" "voc2007-mini:test"; do
    name=${set%%:*}
    step "scoring the checkpoint on $set (tch)"
    "$host" eval "$run" --data "$data/$set" --report "$run/eval-$name.json"
done

# --eval scores the max head on the checkpoint's validation set (coco-mini val2017) in tch
# and in tract on the written file.
step "exporting the max head (λ=0.2) to $out"
tmp=$(mktemp -d "${out%/}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$host" export "$run" --out "$tmp" --variant max --lambda 0.2 --eval
if [[ -d $out/demo ]]; then cp -r "$out/demo" "$tmp/demo"; fi
if [[ -f $out/MODEL_CARD.md ]]; then cp "$out/MODEL_CARD.md" "$tmp/"; fi
rm -rf "$out" && mv "$tmp" "$out"
trap - EXIT

for set in "coco-mini:val2017" "voc2007-mini:test"; do
    name=${set%%:*}
    step "scoring $out/model.onnx on $set (tract)"
    "$host" eval "$out/model.onnx" --data "$data/$set" --report "$run/eval-$name-onnx.json"
done
