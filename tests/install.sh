#!/usr/bin/env bash
# Installs what the tests need on a fresh machine with Rust, skipping what
# is there: the wasm and Windows targets, clippy and rustfmt (rustup), Debian's
# openssl (the TLS tests' certificates), nats-server (the fleet's tests),
# iproute2 (hosts cut off in network namespaces) and mingw-w64 (the Windows
# check) and a venv with rpyc and pytest (.venv). services/build.sh installs
# the tools the example services are built with.
# Usage: bash tests/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 x86_64-pc-windows-gnu
rustup component add clippy rustfmt

missing=()
command -v openssl > /dev/null || missing+=(openssl)
command -v nats-server > /dev/null || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v ip > /dev/null || [ -x /usr/sbin/ip ] || missing+=(iproute2)
command -v x86_64-w64-mingw32-gcc > /dev/null || missing+=(gcc-mingw-w64-x86-64)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet -r tests/python/requirements.txt
