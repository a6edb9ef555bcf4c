#!/usr/bin/env bash
# Builds the Python and JavaScript example services from source into
# target/polyglot/<language>/<service>.wasm, installing the tools first if
# they are missing: componentize-py into .venv (services/python/requirements.txt),
# componentize-js into services/js/node_modules (services/js/package-lock.json).
# Both are plain RPyC classes, built by `wasm-rpyc build` (which this builds
# first), one build per core at a time.
# Usage: bash services/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
out="$target/polyglot"
services=(calculator callback my-service decoupled)

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet -r services/python/requirements.txt
cargo build --release -p wasm-rpyc
# npm ci starts from an empty node_modules: only when the lock file changed.
if [ ! -x services/js/node_modules/.bin/componentize-js ] \
  || [ services/js/package-lock.json -nt services/js/node_modules/.package-lock.json ]; then
  (cd services/js && npm ci --silent --no-audit --no-fund)
fi
mkdir -p "$out/python" "$out/js" "$out/rust"

# The builds run beside each other, one per core: each is mostly one
# process on one core (componentize-py, componentize-js, cargo at the end).
most=$(nproc 2> /dev/null || echo 2)
running=0
failed=0
# beside COMMAND...: starts COMMAND once fewer than $most builds run.
beside() {
  if [ "$running" -ge "$most" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
  "$@" > /dev/null &
  running=$((running + 1))
}
wasm_rpyc_build() {
  "$target/release/wasm-rpyc" build "$@"
}

for service in "${services[@]}"; do
  beside wasm_rpyc_build "services/python/${service//-/_}.py" -o "$out/python/$service.wasm"
  beside wasm_rpyc_build "services/js/${service//-/_}.js" -o "$out/js/$service.wasm"
done
# The chat room, served shared (`serve --shared`).
beside wasm_rpyc_build services/python/chat.py -o "$out/python/chat.wasm"
# The plain class the Rust client's tests call (tests/e2e/plain_python.rs).
beside wasm_rpyc_build tests/python/plain/rich.py -o "$out/python/rich.wasm"
# The counter every connection shares (`serve --shared`), in JavaScript and
# in Rust (in the guests' target folder, where the host's build left the
# crates it shares).
beside wasm_rpyc_build services/js/counter.js -o "$out/js/counter.wasm"
beside env CARGO_TARGET_DIR="$target/guests" "$target/release/wasm-rpyc" build services/counter \
  -o "$out/rust/counter.wasm"
# The calculator with a typed world, for comparison (wasm-rpyc-bench languages).
beside .venv/bin/componentize-py --quiet -d wit -d services/wit/calculator -w example:calculator/calculator \
  componentize app -p services/python/typed -p services/python -p guest-sdk/python \
  -o "$out/python/calculator-typed.wasm"
# The same in JavaScript. componentize-js reads one WIT directory: the
# world, with the shared package as a dependency. It drops the WASI imports
# the service does not use (HTTP).
wit_dir="$out/js/wit-calculator"
rm -rf "$wit_dir" && mkdir -p "$wit_dir/deps/wasm-rpyc-service"
cp services/wit/calculator/world.wit "$wit_dir/"
cp wit/service.wit "$wit_dir/deps/wasm-rpyc-service/"
beside services/js/node_modules/.bin/componentize-js services/js/typed/calculator.js \
  --wit "$wit_dir" -n example:calculator/calculator -d http fetch-event \
  -o "$out/js/calculator-typed.wasm"
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
if [ "$failed" -ne 0 ]; then
  echo "building the example services failed (the errors are above)" >&2
  exit 1
fi
echo "built: $out/{python,js}/{$(IFS=,; echo "${services[*]}")}.wasm, the shared chat and counters, and the typed calculators"
