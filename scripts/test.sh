#!/usr/bin/env bash
# The one test command (README "Run the tests"): on a fresh machine with the Rust toolchain and
# Python 3, it installs what the tests need and runs every test of the workspace.
#
#   ./scripts/test.sh                 # everything: set-up, format and lint gates, all tests
#   ./scripts/test.sh -p csra-core    # extra arguments go to `cargo test`
#
# Set-up (scripts/env.sh) is idempotent and skipped when nothing changed: rustfmt and clippy
# through rustup when they are missing, the Debian packages libclang-dev, mosquitto,
# mosquitto-clients and GStreamer's (GSTREAMER_APT_PACKAGES in scripts/env.sh) through apt when
# they are missing, and a local Python venv (.venv) with the
# pinned packages of requirements/test.txt: libtorch for tch, and the independent references the
# tests compare against.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ensure_rust_components
ensure_apt_packages libclang-dev mosquitto mosquitto-clients "${GSTREAMER_APT_PACKAGES[@]}"
# csra-edge's GStreamer source and the loopback RTSP server of its tests are features (they
# link the system's GStreamer), and so is the ONNX Runtime backend (its tests load the
# libonnxruntime.so of the venv's onnxruntime wheel); they are built, linted and tested here.
features=(--features csra-edge/gstreamer,csra-edge/rtsp-test-server,csra-edge/onnxruntime)
ensure_python_venv test
use_python_venv
# The Python references the tests compare against (they would find .venv by themselves; a
# CSRA_PYTHON from the caller's environment must not win over the venv just built). A test
# whose reference or tool is missing fails, under this command and under plain `cargo test`.
export CSRA_PYTHON="$PWD/.venv/bin/python"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets "${features[@]}" --quiet -- -D warnings

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace "${features[@]}" --no-deps --quiet

step "cargo test"
cargo test --workspace "${features[@]}" "$@"
