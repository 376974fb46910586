#!/usr/bin/env bash
# Builds csra-edge (release) for one board's CPU (README "Building for the board's CPU").
#
#   ./scripts/build-edge.sh --device jetson-orin-nano   # aarch64, -C target-cpu=cortex-a78ae
#   ./scripts/build-edge.sh --device jetson-xavier-nx   # aarch64, -C target-cpu=carmel
#   ./scripts/build-edge.sh --native                    # this machine's CPU (-C target-cpu=native)
#   ./scripts/build-edge.sh --device jetson-orin-nx --features tensorrt   # extra cargo flags
#
# A Jetson profile's `target_cpu` (devices/NAME.toml) names its core; Jetsons are aarch64, so
# the build is the cross build of scripts/aarch64-check.sh with that CPU. Each CPU has its own
# target folder (target/cpu-CPU), so the portable build's artifacts are untouched. The binary
# path is printed last. A tuned binary checks at start-up that the CPU has every feature it was
# built to assume and otherwise exits naming them (no SIGILL mid-frame).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

usage() { echo "usage: $0 --device PROFILE | --native [cargo flags]" >&2; exit 2; }
(($#)) || usage
case $1 in
    --device)
        (($# >= 2)) || usage
        profile=devices/$2.toml
        [[ -f $profile ]] || { echo "$profile: no such profile (see devices/)" >&2; exit 1; }
        cpu=$(sed -n 's/^target_cpu *= *"\([^"]*\)".*/\1/p' "$profile")
        [[ -n $cpu ]] || { echo "$profile has no target_cpu: use the portable build (cargo build --release -p csra-edge)" >&2; exit 1; }
        triple=aarch64-unknown-linux-gnu
        shift 2
        ;;
    --native)
        cpu=native
        triple=$(rustc -vV | sed -n 's/^host: //p')
        shift
        ;;
    *) usage ;;
esac

if [[ $cpu != native ]] && ! rustc --print target-cpus --target "$triple" | awk '{print $1}' | grep -qx "$cpu"; then
    echo "$profile: rustc does not know target_cpu \"$cpu\" for $triple (rustc --print target-cpus --target $triple)" >&2
    exit 1
fi

target_dir=${CARGO_TARGET_DIR:-target}/cpu-$cpu
triple_env=$(tr 'a-z-' 'A-Z_' <<<"$triple")
if [[ $triple == aarch64-unknown-linux-gnu && $(uname -m) != aarch64 ]]; then
    aarch64_cross_env
fi
export "CARGO_TARGET_${triple_env}_RUSTFLAGS=-C target-cpu=$cpu"
step "building csra-edge for $triple, -C target-cpu=$cpu (release, $target_dir)"
cargo build --release --quiet -p csra-edge --bin csra-edge --target "$triple" --target-dir "$target_dir" "$@"
echo "$target_dir/$triple/release/csra-edge"
