#!/usr/bin/env bash
# Serves every example service: the Rust ones built into the host (the seed's
# calculator on 18861, MyService on 18862, decoupled and callback
# ServerServices on 18863 and 18864), then the calculator, the callback
# service and MyService in Python (18871-18873) and in JavaScript
# (18874-18876), the decoupled ServerService in Python (18877) and in
# JavaScript (18878), and the services one instance serves to every
# connection (`--shared`): the chat room in Python (18879) and the counter
# in Rust (18880) and in JavaScript (18881); built from source first.
# Usage: bash services/serve.sh   (Ctrl-C stops every host)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

rustup target add wasm32-wasip2
# Builds the host too (once: it is not built again below).
bash services/build.sh
"$target/release/wasm-rpyc" serve &
bundled=$!
"$target/release/wasm-rpyc" serve --shared --port 18879 \
  "$target"/polyglot/python/chat.wasm "$target"/polyglot/{rust,js}/counter.wasm &
shared=$!
trap 'kill $bundled $shared 2> /dev/null' EXIT
"$target/release/wasm-rpyc" serve --port 18871 \
  "$target"/polyglot/python/{calculator,callback,my-service}.wasm \
  "$target"/polyglot/js/{calculator,callback,my-service}.wasm \
  "$target"/polyglot/{python,js}/decoupled.wasm
