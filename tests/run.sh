#!/usr/bin/env bash
# Runs every test from a fresh machine: the Rust workspace (which builds the
# host, the example services and the test guests, after the Python and
# JavaScript example services), then the Python suite with the real rpyc
# package against the host run as a separate process.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2
# The TLS tests make their certificates with the openssl command.
if ! command -v openssl > /dev/null; then
  apt-get update -qq && apt-get install -y -qq openssl
fi
# The fleet's tests start a NATS server with JetStream (Debian's, 2.9), and
# cut a host off from it in a network namespace (iproute2).
if ! command -v nats-server > /dev/null && [ ! -x /usr/sbin/nats-server ]; then
  apt-get update -qq && apt-get install -y -qq nats-server
fi
if ! command -v ip > /dev/null && [ ! -x /usr/sbin/ip ]; then
  apt-get update -qq && apt-get install -y -qq iproute2
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet -r tests/python/requirements.txt

# The Python and JavaScript example services (componentize-py, componentize-js),
# which the conformance tests run beside the Rust ones.
bash services/build.sh
# Lints: clippy clean, every public item documented.
rustup component add clippy
cargo clippy --workspace --all-targets -- -D warnings
# Beyond Linux: the host crate checked for Windows (mingw-w64 compiles the C
# parts of its dependencies). macOS is not checked here: those C parts need
# the macOS SDK, which no registry this CI reaches provides.
rustup target add x86_64-pc-windows-gnu
if ! command -v x86_64-w64-mingw32-gcc > /dev/null; then
  apt-get update -qq && apt-get install -y -qq gcc-mingw-w64-x86-64
fi
RUSTFLAGS="-D warnings" cargo check -p wasm-rpyc --target x86_64-pc-windows-gnu
# Supply chain (deny.toml): licenses, bans and sources. The advisories check
# needs the RustSec database from GitHub, which this CI cannot reach.
if ! command -v cargo-deny > /dev/null; then
  cargo install --locked cargo-deny@0.20.2
fi
cargo deny check licenses bans sources
cargo test --release --workspace
# The Rust guest SDK, natively: the #[service] attribute's tests and the doc examples.
cargo test --release --manifest-path guest-sdk/Cargo.toml --workspace
.venv/bin/python -m pytest -q tests/python
