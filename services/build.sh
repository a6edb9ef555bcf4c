#!/usr/bin/env bash
# Builds the Python and JavaScript example services from source into
# target/polyglot/<language>/<service>.wasm, installing the tools first if
# they are missing: componentize-py into .venv (services/python/requirements.txt),
# componentize-js into services/js/node_modules (services/js/package-lock.json).
# Both are plain RPyC classes, built by `wasm-rpyc build`.
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
mkdir -p "$out/python"
for service in "${services[@]}"; do
  "$target/release/wasm-rpyc" build "services/python/${service//-/_}.py" \
    -o "$out/python/$service.wasm" > /dev/null
done
# The chat room, served shared (`serve --shared`).
"$target/release/wasm-rpyc" build services/python/chat.py -o "$out/python/chat.wasm" > /dev/null
# The plain class the Rust client's tests call (tests/e2e/plain_python.rs).
"$target/release/wasm-rpyc" build tests/python/plain/rich.py -o "$out/python/rich.wasm" > /dev/null
# The calculator with a typed world, for comparison (wasm-rpyc-bench languages).
.venv/bin/componentize-py --quiet -d wit -d services/wit/calculator -w example:calculator/calculator \
  componentize app -p services/python/typed -p services/python -p guest-sdk/python \
  -o "$out/python/calculator-typed.wasm"

(cd services/js && npm ci --silent --no-audit --no-fund)
mkdir -p "$out/js"
for service in "${services[@]}"; do
  "$target/release/wasm-rpyc" build "services/js/${service//-/_}.js" \
    -o "$out/js/$service.wasm" > /dev/null
done
# The counter every connection shares (`serve --shared`), in JavaScript and in Rust.
"$target/release/wasm-rpyc" build services/js/counter.js -o "$out/js/counter.wasm" > /dev/null
mkdir -p "$out/rust"
"$target/release/wasm-rpyc" build services/counter -o "$out/rust/counter.wasm" > /dev/null
# The calculator with a typed world, for comparison. componentize-js reads
# one WIT directory: the world, with the shared package as a dependency.
# It drops the WASI imports the service does not use (HTTP).
wit_dir="$out/js/wit-calculator"
rm -rf "$wit_dir" && mkdir -p "$wit_dir/deps/wasm-rpyc-service"
cp services/wit/calculator/world.wit "$wit_dir/"
cp wit/service.wit "$wit_dir/deps/wasm-rpyc-service/"
services/js/node_modules/.bin/componentize-js services/js/typed/calculator.js \
  --wit "$wit_dir" -n example:calculator/calculator -d http fetch-event \
  -o "$out/js/calculator-typed.wasm" > /dev/null
echo "built: $out/{python,js}/{$(IFS=,; echo "${services[*]}")}.wasm, the shared chat and counters, and the typed calculators"
