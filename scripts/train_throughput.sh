#!/usr/bin/env bash
# Training throughput of csra-host against plain PyTorch (scripts/pytorch_reference.py): the
# same MobileNetV2 + CSRA head (H=1, λ=0.1), recipe, augmentation, batch 16 at 224, on the
# coco-mini train2017 images, CPU, 2 libtorch threads. Runs alternate (PyTorch, csra-host,
# PyTorch, csra-host, ...) so that a busy machine slows both alike; the ratio of the two
# totals is the figure to read.
#
#   ./scripts/train_throughput.sh            # 2 rounds of 3 epochs each
#   ROUNDS=3 EPOCHS=4 ./scripts/train_throughput.sh
#   CSRA_HOST=target/release/csra-host ./scripts/train_throughput.sh   # an existing build
#
# Prints one JSON line per run, then the totals. Needs the venv of scripts/env.sh (torch,
# torchvision); builds csra-host in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ensure_python_venv test
use_python_venv

data=${CSRA_DATA_DIR:-../shared/data}
rounds=${ROUNDS:-2}
epochs=${EPOCHS:-3}
threads=${THREADS:-2}

host=${CSRA_HOST:-}
if [[ -z $host ]]; then
    step "building csra-host (release)"
    cargo build --release --quiet -p csra-host
    host=${CARGO_TARGET_DIR:-target}/release/csra-host
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# csra_host ROUND: trains into $work and prints the run's images/s (epoch time, data waits
# included, validation excluded), as the reference measures it.
csra_host() {
    local out=$work/csra-$1
    "$host" -q train --data "$data/coco-mini" --arch mobilenet_v2 \
        --pretrained "$data/weights/mobilenet_v2_imagenet.safetensors" \
        --normalize tf --freeze-bn --image-size 224 --batch-size 16 --epochs "$epochs" \
        --head csra --heads 1 --lambda 0.1 --no-val --threads "$threads" --out "$out" \
        >/dev/null
    python3 - "$out/train-log.jsonl" <<'PY'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
images = sum(r["images"] for r in records)
seconds = sum(r["images"] / r["images_per_second"] for r in records)
print(json.dumps({"tool": "csra-host", "images": round(images), "wall_s": round(seconds, 2),
                  "images_per_s": round(images / seconds, 2),
                  "per_epoch": [round(r["images_per_second"], 2) for r in records]}))
PY
}

pytorch() {
    python3 scripts/pytorch_reference.py --data "$data" --epochs "$epochs" --threads "$threads" \
        --channels-last --json |
        python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({"tool": "pytorch", "images": r["images"], "wall_s": r["wall_s"], "images_per_s": r["images_per_s_end_to_end"]}))'
}

step "$rounds rounds of $epochs epochs each, alternating"
for round in $(seq "$rounds"); do
    pytorch | tee -a "$work/runs.jsonl"
    csra_host "$round" | tee -a "$work/runs.jsonl"
done
python3 - "$work/runs.jsonl" <<'PY'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
total = {}
for r in runs:
    images, seconds = total.get(r["tool"], (0, 0.0))
    total[r["tool"]] = (images + r["images"], seconds + r["wall_s"])
rate = {tool: images / seconds for tool, (images, seconds) in total.items()}
print(json.dumps({"pytorch_images_per_s": round(rate["pytorch"], 2),
                  "csra_host_images_per_s": round(rate["csra-host"], 2),
                  "ratio": round(rate["csra-host"] / rate["pytorch"], 3)}))
PY
