#!/usr/bin/env bash
# The Jetson build, proven on this machine (README "Cross-compiling for aarch64 (Jetson)"):
# builds csra-edge for the Jetson Orin Nano's Cortex-A78AE (scripts/build-edge.sh, the build a
# Jetson user installs), runs it under qemu-aarch64 with that profile (TensorRT is not built, so
# that is tract's ARM kernels, the CPU fallback a Jetson user gets) and the x86-64 build
# natively, both on the same photos with the shipped model, and fails when any class
# probability differs by more than 1e-4. It then starts the same binary on an emulated
# Cortex-A53 (ARMv8.0: no LSE atomics, no FP16, no dot product), which must refuse to run and
# name the missing features instead of dying of SIGILL.
#
#   ./scripts/aarch64-check.sh                 # the demo photos and a few of ../shared/data/photos
#   ./scripts/aarch64-check.sh a.jpg b.png     # these photos instead
#   CSRA_PORTABLE=1 ./scripts/aarch64-check.sh # the portable aarch64 build instead (no target-cpu)
#
# Set-up (scripts/env.sh `aarch64_cross_env`), idempotent: the Rust target
# aarch64-unknown-linux-gnu through rustup, and through apt libclang-dev, gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross and linux-libc-dev-arm64-cross (the arm64 libc and kernel headers:
# bindgen reads the V4L2 headers of the target) and qemu-user. The cross settings are
# environment variables of this script only, so x86 builds are untouched. The tuned binary is
# ${CARGO_TARGET_DIR:-target}/cpu-cortex-a78ae/aarch64-unknown-linux-gnu/release/csra-edge, the
# portable one ${CARGO_TARGET_DIR:-target}/aarch64-unknown-linux-gnu/release/csra-edge; copy
# either to the Jetson as is.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

triple=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu
tolerance=1e-4
model=models/mobilenet_v2-coco-voc-mini
data=${CSRA_DATA_DIR:-../shared/data}
target_dir=${CARGO_TARGET_DIR:-target}
device=jetson-orin-nano

if [[ -n ${CSRA_PORTABLE:-} ]]; then
    aarch64_cross_env
    step "building csra-edge for $triple (release, portable)"
    cargo build --release --quiet -p csra-edge --bin csra-edge --target "$triple"
    arm_edge=$target_dir/$triple/release/csra-edge
else
    arm_edge=$(scripts/build-edge.sh --device "$device" | tail -n 1)
    aarch64_cross_env
fi

# The x86-64 side: release (as scripts/demo.sh builds it) unless CSRA_HOST_PROFILE names
# another profile, e.g. `test` to reuse what scripts/test.sh compiled (Rust neither reorders
# nor fuses float operations at any opt-level, so the profile should not move the numbers).
host_profile=${CSRA_HOST_PROFILE:-release}
step "building csra-edge for the host (profile $host_profile)"
cargo build --profile "$host_profile" --quiet -p csra-edge --bin csra-edge
case $host_profile in
    dev | test) host_edge=$target_dir/debug/csra-edge ;;
    *) host_edge=$target_dir/$host_profile/csra-edge ;;
esac

# The photos, copied into one folder so both runs read the same paths (the lines' `origin`):
# the demo photos and a few others of different sizes and formats.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/photos"
if (($#)); then
    photos=("$@")
else
    photos=("$model"/demo/*.jpg)
    for name in coral_grace_hopper.bmp coral_cat_720p.jpg cat_0.jpg dog_0.jpg; do
        if [[ ! -f $data/photos/$name ]]; then
            echo "$data/photos/$name is missing: set CSRA_DATA_DIR to the shared data folder (see README)" >&2
            exit 1
        fi
        photos+=("$data/photos/$name")
    done
fi
cp "${photos[@]}" "$work/photos/"

run_args=(--model "$model" --input "$work/photos" --scores all --threads 2)
step "csra-edge on ${#photos[@]} photos, x86-64 (native)"
RUST_LOG=warn "$host_edge" "${run_args[@]}" --device x86-cpu >"$work/x86_64.jsonl"
step "csra-edge on ${#photos[@]} photos, aarch64 (qemu-aarch64, profile $device)"
RUST_LOG=warn qemu-aarch64 -L "$sysroot" "$arm_edge" "${run_args[@]}" --device "$device" --backend tract \
    >"$work/aarch64.jsonl"

step "comparing every class probability (tolerance $tolerance)"
python3 - "$work/x86_64.jsonl" "$work/aarch64.jsonl" "$tolerance" <<'EOF'
import json
import sys

x86_path, arm_path, tolerance = sys.argv[1], sys.argv[2], float(sys.argv[3])


def read(path):
    """The JSON lines of one run, by photo."""
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return {r["origin"]: r for r in records}


x86, arm = read(x86_path), read(arm_path)
if not x86 or sorted(x86) != sorted(arm):
    sys.exit(f"the runs read different photos: x86-64 {sorted(x86)}, aarch64 {sorted(arm)}")
worst = (0.0, None, None)
for origin, a in x86.items():
    b = arm[origin]
    if a.get("scores") is None or b.get("scores") is None:
        sys.exit(f"{origin}: a line without scores (--scores all)")
    if list(a["scores"]) != list(b["scores"]):
        sys.exit(f"{origin}: the runs report different classes")
    for name, p in a["scores"].items():
        delta = abs(p - b["scores"][name])
        if delta >= worst[0]:
            worst = (delta, origin, name)
    labels_a = [l["label"] for l in a["labels"]]
    labels_b = [l["label"] for l in b["labels"]]
    if labels_a != labels_b:
        print(f"{origin}: labels differ: x86-64 {labels_a}, aarch64 {labels_b}")
delta, origin, name = worst
classes = len(next(iter(x86.values()))["scores"])
print(f"{len(x86)} photos x {classes} classes: max |x86-64 - aarch64| = {delta:.3g} "
      f"({name} on {origin.rsplit('/', 1)[-1]})")
if delta > tolerance:
    sys.exit(f"FAIL: above the tolerance {tolerance}")
print(f"OK: within {tolerance}")
EOF

if [[ -z ${CSRA_PORTABLE:-} ]]; then
    step "the Cortex-A78AE build on an emulated Cortex-A53: it must refuse, naming the features"
    if qemu-aarch64 -cpu cortex-a53 -L "$sysroot" "$arm_edge" --version 2>"$work/a53.err"; then
        echo "FAIL: the Cortex-A78AE build started on a Cortex-A53" >&2
        exit 1
    fi
    cat "$work/a53.err" >&2
    for feature in lse fp16 dotprod; do
        grep -q "lacks.*\b$feature\b" "$work/a53.err" ||
            { echo "FAIL: the refusal does not name $feature" >&2; exit 1; }
    done
    echo "OK: refused with the features named"
fi
