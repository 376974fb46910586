#!/usr/bin/env bash
# Fuzzes every reader of outside input (crates/csra-fuzz): each target for SECONDS (default 600)
# under libFuzzer, JOBS targets at a time (default 2), then minimises its corpus back into
# crates/csra-fuzz/fuzz/corpus/NAME, which the stable replay test runs in CI. Needs nightly and
# cargo-fuzz (`cargo install cargo-fuzz`). A crash leaves its input in fuzz/artifacts/NAME and
# makes this script fail. Not part of the test command: it is a long run.
#
#   ./scripts/fuzz.sh                 # all 13 targets, 10 minutes each
#   SECONDS_EACH=60 ./scripts/fuzz.sh manifest mqtt_url
#   NO_BUILD=1 JOBS=7 ./scripts/fuzz.sh   # the binaries already built
set -euo pipefail
cd "$(dirname "$0")/../crates/csra-fuzz"
seconds=${SECONDS_EACH:-600}
jobs=${JOBS:-2}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
# Debug assertions on (overflow checks): a panic that a debug build would hit is a finding.
[ -n "${NO_BUILD:-}" ] || cargo +nightly fuzz build -s none -a
bin=fuzz/target/x86_64-unknown-linux-gnu/release
mkdir -p fuzz/artifacts fuzz/runs
run_one() {
    local name=$1 fresh="fuzz/runs/$1"
    mkdir -p "$fresh" "fuzz/artifacts/$name"
    "$bin/$name" "$fresh" "fuzz/corpus/$name" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="fuzz/artifacts/$name/" \
        > "fuzz/runs/$name.log" 2>&1
    local status=$?
    local stats
    stats=$(grep -E '^#[0-9]+.*(DONE|pulse)' "fuzz/runs/$name.log" | tail -1)
    echo "$name: exit $status; $stats"
    # Minimise what was found into the committed corpus.
    local minimal="fuzz/runs/$name.min"
    rm -rf "$minimal" && mkdir -p "$minimal"
    "$bin/$name" -merge=1 "$minimal" "fuzz/corpus/$name" "$fresh" > /dev/null 2>&1
    rm -rf "fuzz/corpus/$name" && mv "$minimal" "fuzz/corpus/$name"
    return "$status"
}
export -f run_one
export seconds bin
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
