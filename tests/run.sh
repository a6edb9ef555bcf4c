#!/usr/bin/env bash
# Runs every test from a fresh machine: installs what the tests need, builds
# the host and the example services once, then runs each suite (lints, the
# Windows check, the supply chain, the Rust workspace, the Rust guest SDK,
# the Python suite with the real rpyc package against the host run as a
# separate process). Every suite runs even when another fails; the end
# prints each step's result and duration, and the tests that failed, and
# the exit status is non-zero if anything failed.
# Usage: bash tests/run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source tests/steps.sh

# Without these nothing can be tested: a failure here ends the run.
step "install what the tests need" bash tests/install.sh || { steps_summary; exit 1; }

# The host, then the Python and JavaScript example services the suites
# serve (built with it; the Rust ones are built into it).
step "build the host" cargo build --release -p wasm-rpyc --timings
step "build the example services" bash services/build.sh
# The supply chain compiles cargo-deny the first time (minutes, in a target
# folder of its own): beside the lints and the Windows check.
step_background "supply chain (cargo deny check)" bash tests/supply-chain.sh
# Lints: rustfmt's layout; clippy clean, every public item documented.
step "format" cargo fmt --all -- --check
step "clippy" cargo clippy --workspace --all-targets -- -D warnings
# Beyond Linux: the host crate checked for Windows (mingw-w64 compiles the C
# parts of its dependencies). macOS is not checked: those C parts need the
# macOS SDK, which no registry this CI reaches provides.
step "check for Windows" env RUSTFLAGS="-D warnings" cargo check -p wasm-rpyc --target x86_64-pc-windows-gnu
steps_wait
step "Rust workspace tests" cargo test --release --workspace
# The Rust guest SDK, natively: the #[service] attribute's tests and the doc examples.
step "Rust guest SDK tests" cargo test --release --manifest-path guest-sdk/Cargo.toml --workspace
# One worker per core, each file's tests on one worker (they share its hosts).
step "Python tests" .venv/bin/python -m pytest -q -rfE --durations=15 -n auto --dist loadfile tests/python
# RPyC's own tests of classic mode, where its repository can be reached
# (GitHub, or a checkout in RPYC_CHECKOUT); said skipped where it cannot.
step "RPyC's own tests (classic mode)" bash tests/rpyc-suite/run.sh

steps_summary
