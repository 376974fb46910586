#!/usr/bin/env bash
# The one test command (README "Run the tests"): on a fresh machine with the Rust toolchain and
# Python 3, it installs what the tests need and runs every test of the workspace.
#
#   ./scripts/test.sh                 # everything: set-up, format and lint gates, all tests
#   ./scripts/test.sh -p csra-core    # extra arguments go to `cargo test`
#
# Set-up is idempotent and skipped when nothing changed:
#   - rustfmt and clippy through rustup when they are missing;
#   - a local Python venv (.venv) with the pinned packages of requirements/test.txt: the
#     independent reference implementations the tests compare against.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n==> %s\n' "$*" >&2; }

ensure_rust_components() {
    local missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    if ((${#missing[@]})); then
        step "installing Rust components: ${missing[*]}"
        rustup component add "${missing[@]}"
    fi
}

# The venv is rebuilt only when requirements/test.txt changes (its hash is stamped inside).
ensure_python_venv() {
    local requirements=requirements/test.txt stamp=.venv/.requirements.sha256 want
    want=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [[ -x .venv/bin/python && -f $stamp && $(<"$stamp") == "$want" ]]; then
        return
    fi
    step "setting up .venv from $requirements"
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
}

ensure_rust_components
ensure_python_venv

# The venv comes first on PATH, so build scripts that ask `python3` for packages (tch's
# LIBTORCH_USE_PYTORCH=1 looks up torch this way) find the pinned ones.
export PATH="$root/.venv/bin:$PATH" VIRTUAL_ENV="$root/.venv"
# tch links the venv's torch 2.11.0; csra-host's build script records its directory as rpath.
export LIBTORCH_USE_PYTORCH=1
# Tests that compare against Python references must run, not skip, under this command.
export CSRA_PYTHON="$root/.venv/bin/python"
export CSRA_REQUIRE_PYTHON_REFERENCE=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo test"
cargo test --workspace "$@"
