#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) each, one after another.
# Usage: bash fuzz/run.sh [SECONDS]
#
# The stable toolchain without a sanitizer: our crates forbid unsafe code,
# so the fuzzers look for panics, broken round trips, hangs and runaway
# memory, and stable is the toolchain every machine here has. New inputs go
# into fuzz/corpus/<target>/ (minimise with `cargo fuzz cmin -s none
# <target>` before committing); a failing input lands in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}

command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked
rustup target add wasm32-wasip2
failed=()
for target in $(cargo fuzz list); do
  cargo fuzz run --sanitizer none "$target" -- -max_total_time="$seconds" || failed+=("$target")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]} (the inputs are in fuzz/artifacts/)" >&2
  exit 1
fi
