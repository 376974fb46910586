# Set-up shared by the README's two commands (scripts/test.sh and scripts/coco-mini.sh); source
# it from the repository root. Every step is idempotent and skipped when nothing changed.

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

# Adds the Rust standard library for the target triples named, only those missing (the
# aarch64 cross build of scripts/aarch64-check.sh).
ensure_rust_targets() {
    local missing=() t installed
    installed=$(rustup target list --installed)
    for t in "$@"; do
        grep -qx "$t" <<<"$installed" || missing+=("$t")
    done
    if ((${#missing[@]})); then
        step "installing Rust targets: ${missing[*]}"
        rustup target add "${missing[@]}"
    fi
}

# Installs the Debian packages named, only those missing: libclang-dev (bindgen, for the v4l
# crate's V4L2 bindings, which building csra-edge needs), the mosquitto broker and clients
# (the MQTT sink's tests), GStreamer's development files, plugins and tools (csra-edge's
# `gstreamer` feature and its video and RTSP tests), and the aarch64 cross toolchain and qemu-user
# (scripts/aarch64-check.sh). Installing needs root (CI runs as root); otherwise it says what to
# install.
ensure_apt_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    if [[ $(id -u) != 0 ]]; then
        echo "please install: sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
    step "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The aarch64 (Jetson) cross build from an x86-64 Debian machine, for scripts/build-edge.sh
# and scripts/aarch64-check.sh: installs the Rust target, the cross gcc, the arm64 libc and
# kernel headers and qemu-user when missing, then exports the linker and C compiler (tract-linalg
# assembles its ARM kernels with it) and points bindgen's clang at the arm64 headers, so the
# V4L2 bindings get aarch64's struct layouts. Environment variables of the calling script only.
aarch64_cross_env() {
    local sysroot=/usr/aarch64-linux-gnu
    ensure_rust_targets aarch64-unknown-linux-gnu
    ensure_apt_packages libclang-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
        linux-libc-dev-arm64-cross qemu-user
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
    export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--target=aarch64-linux-gnu --sysroot=$sysroot"
}

# What csra-edge's `gstreamer` feature builds against and its tests run: the development files
# (pkg-config finds them), the plugins the pipelines use (decodebin, videoscale, videoconvert,
# appsink: base; rtspsrc, aspectratiocrop, jpeg, mp4/avi: good; h264parse: bad; avdec_h264:
# libav; x264enc, which the tests encode with: ugly), gst-launch-1.0 (tools) and gst-rtsp-server
# (the tests' loopback RTSP server).
GSTREAMER_APT_PACKAGES=(pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
    libgstrtspserver-1.0-dev gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools)

# Installs requirements/$1.txt into .venv, again only when some requirements file changed (their
# hash is stamped inside the venv, per entry file).
ensure_python_venv() {
    local requirements=requirements/$1.txt stamp=.venv/.$1.sha256 want
    want=$(cat requirements/*.txt | sha256sum | cut -d' ' -f1)
    if [[ -x .venv/bin/python && -f $stamp && $(<"$stamp") == "$want" ]]; then
        return
    fi
    step "setting up .venv from $requirements"
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
}

# The venv comes first on PATH, so build scripts that ask `python3` for packages find the pinned
# ones: tch's LIBTORCH_USE_PYTORCH=1 links the venv's torch 2.11.0, and the build scripts of
# csra-host and the tests record its directory as an rpath, so binaries run without
# LD_LIBRARY_PATH.
use_python_venv() {
    export PATH="$PWD/.venv/bin:$PATH" VIRTUAL_ENV="$PWD/.venv"
    export LIBTORCH_USE_PYTORCH=1
}
