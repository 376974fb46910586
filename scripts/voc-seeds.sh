#!/usr/bin/env bash
# More seeds for the VOC baseline rows of docs/results.md (issue 14, item 3): the GAP baseline
# and its training-free max head (λ = 0.2) on voc2007-mini, trained by csra-host and by plain
# PyTorch (scripts/pytorch_reference.py) with the same commands paper-tables uses, then a
# summary of every seed there is. Runs go to runs/paper/ (RUNS=DIR to change) under
# paper-tables' names, so `paper-tables --seeds N` reuses them; finished runs are skipped, so
# an interrupted call resumes. About 4 minutes per csra run and 10 per PyTorch run on an idle
# 2-core machine.
#
#   ./scripts/voc-seeds.sh 4 5 6 7
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

[ $# -gt 0 ] || { echo "usage: $0 SEED..." >&2; exit 2; }
# test.txt: torch and torchvision, which the PyTorch reference needs.
ensure_python_venv test
use_python_venv

step "building csra-host (release)"
cargo build --release --quiet -p csra-host
host=${CARGO_TARGET_DIR:-target}/release/csra-host
data=${CSRA_DATA_DIR:-../shared/data}
runs=${RUNS:-runs/paper}
mkdir -p "$runs"

for seed in "$@"; do
    dir=$runs/voc-baseline-s$seed
    if ! grep -qs '"epochs_done": *12' "$dir/latest.json"; then
        step "csra-host: baseline, seed $seed"
        if [ -f "$dir/latest.json" ]; then
            "$host" train --resume "$dir"
        else
            "$host" train --data "$data/voc2007-mini" --arch mobilenet_v2 \
                --pretrained "$data/weights/mobilenet_v2_imagenet.safetensors" \
                --normalize tf --freeze-bn --image-size 224 --batch-size 16 --step-size 4 \
                --no-val --epochs 12 --seed "$seed" --head baseline --out "$dir"
        fi
    fi
    [ -f "$dir/eval.json" ] || "$host" eval "$dir" --data "$data/voc2007-mini" --report "$dir/eval.json"
    [ -f "$dir/eval-max-l0.2.json" ] || "$host" eval "$dir" --data "$data/voc2007-mini" \
        --head max --lambda 0.2 --report "$dir/eval-max-l0.2.json"
    report=$runs/pytorch-voc-baseline-s$seed.json
    if [ ! -f "$report" ]; then
        step "plain PyTorch: baseline, seed $seed"
        python scripts/pytorch_reference.py --data "$data" --dataset voc --head baseline \
            --seed "$seed" --epochs 12 --eval --json >"$report.tmp"
        mv "$report.tmp" "$report"
    fi
done

step "voc2007-mini test mAP over every seed in $runs"
python - "$runs" <<'EOF'
import json, re, statistics, sys
from pathlib import Path

runs = Path(sys.argv[1])
def seed(path):
    return int(re.search(r"-s(\d+)", path.as_posix()).group(1))
def report_map(path):
    return 100 * json.loads(path.read_text())["metrics"]["map"]
rows = {
    "csra baseline": {seed(p): report_map(p) for p in runs.glob("voc-baseline-s*/eval.json")},
    "csra baseline + max": {seed(p): report_map(p) for p in runs.glob("voc-baseline-s*/eval-max-l0.2.json")},
    "PyTorch baseline": {seed(p): json.loads(p.read_text())["map"] for p in runs.glob("pytorch-voc-baseline-s*.json")},
    "PyTorch baseline + max": {seed(p): json.loads(p.read_text())["max_head_map"] for p in runs.glob("pytorch-voc-baseline-s*.json")},
}
for name, maps in rows.items():
    if not maps:
        continue
    values = [maps[s] for s in sorted(maps)]
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    cells = ", ".join(f"s{s} {maps[s]:.2f}" for s in sorted(maps))
    print(f"{name:24s} mean {statistics.mean(values):.2f} (sd {sd:.2f}, {len(values)} seeds): {cells}")
EOF
