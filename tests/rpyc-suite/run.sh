#!/usr/bin/env bash
# RPyC's own tests of classic mode (its repository's tests/ at tag 6.0.2, the
# rpyc the venv has), run unchanged against `wasm-rpyc classic` (driver.py
# points their connections at it). Each test's outcome is compared with
# expected.txt, which names each test that fails in the sandbox and why: the
# exit status is non-zero if a test fails that should pass, or passes that
# should fail. The tests are not in rpyc's PyPI package: they come from a
# checkout (the argument or RPYC_CHECKOUT), else from a clone; where GitHub
# is out of reach and no checkout is given, the suite is skipped.
# Usage: bash tests/rpyc-suite/run.sh [RPYC_CHECKOUT]
# (WASM_RPYC: the binary, target/release/wasm-rpyc by default)
set -euo pipefail
checkout="${1:-${RPYC_CHECKOUT:-}}"
[ -z "$checkout" ] || checkout="$(realpath "$checkout")"
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
binary="${WASM_RPYC:-$target/release/wasm-rpyc}"
tag=6.0.2

if [ -z "$checkout" ]; then
  checkout="$target/rpyc-$tag"
  if [ ! -f "$checkout/tests/test_classic.py" ]; then
    rm -rf "$checkout"
    if ! timeout 60 git clone --quiet --depth 1 --branch "$tag" \
      https://github.com/tomerfiliba-org/rpyc "$checkout" 2> /dev/null; then
      echo "RPyC's test suite skipped: its repository (github.com/tomerfiliba-org/rpyc) is out of reach and no RPYC_CHECKOUT was given"
      exit 0
    fi
  fi
fi
# The tests must be those of the rpyc that runs them.
if ! grep -q "__version__ = '$tag'" "$checkout/rpyc/version.py"; then
  echo "$checkout is not rpyc $tag" >&2
  exit 1
fi

# The tests' temporary files (TMPDIR) are in a directory the host grants the
# server at the same path; the hosts' logs are kept for a failing run.
logs="$target/rpyc-suite"
mkdir -p "$logs"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/rpyc-suite.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
TMPDIR="$scratch" timeout 900 .venv/bin/python tests/rpyc-suite/driver.py \
  "$binary" "$checkout" tests/rpyc-suite/expected.txt "$logs"
