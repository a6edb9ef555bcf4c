#!/usr/bin/env bash
# The supply-chain check (deny.toml): `cargo deny check` with all four
# checks (advisories, bans, licenses, sources). Where GitHub is reachable the
# advisories come from the live RustSec database; where it is not, from the
# snapshot in ../shared/advisory-db (see its SNAPSHOT.md), read without
# fetching and accepted as of the snapshot's own date.
# Usage: bash tests/supply-chain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
snapshot=../shared/advisory-db

if ! command -v cargo-deny > /dev/null; then
  cargo install --locked cargo-deny@0.20.2
fi

if timeout 20 git ls-remote --quiet https://github.com/rustsec/advisory-db HEAD > /dev/null 2>&1; then
  echo "advisories: the live RustSec database"
  exec cargo deny check
fi
if [ ! -f "$snapshot/SNAPSHOT.md" ]; then
  echo "GitHub is out of reach and there is no advisory snapshot at $snapshot" >&2
  exit 1
fi

# cargo-deny reads a database from a git checkout (its commit time is the
# database's age): the snapshot becomes one commit dated as the snapshot.
date=$(grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}' "$snapshot/SNAPSHOT.md" | head -n 1)
dbs="$target/advisory-dbs"
checkout="$dbs/snapshot-$date"
if [ ! -d "$checkout/.git" ]; then
  rm -rf "$checkout" && mkdir -p "$checkout"
  cp -R "$snapshot/." "$checkout/"
  chmod -R u+w "$checkout"
  (
    cd "$checkout"
    export GIT_AUTHOR_DATE="${date}T00:00:00Z" GIT_COMMITTER_DATE="${date}T00:00:00Z"
    git init --quiet
    git add --all
    git -c user.name=snapshot -c user.email=snapshot@localhost commit --quiet -m "RustSec advisory database of $date"
    touch -d "$date" .git/HEAD
  )
fi
# cargo-deny keeps each database in a folder named by its URL under db-path:
# point the default URL's folder at the checkout. Offline, it reads the
# crates (of every platform) that cargo has fetched.
config="$dbs/deny.toml"
days=$(( ($(date +%s) - $(date -d "$date" +%s)) / 86400 + 1 ))
sed -e "/^\[advisories\]/a db-path = \"$(realpath "$dbs")/by-url\"\nmaximum-db-staleness = \"P${days}D\"" deny.toml > "$config"
cargo fetch --locked --quiet
# The folder's name is a hash of the URL: cargo-deny says it the first time.
url_folder=$(compgen -G "$dbs/by-url/advisory-db-*" | head -n 1 || true)
if [ -z "$url_folder" ]; then
  url_folder=$(cargo deny --log-level debug --offline --config "$config" check advisories 2>&1 \
    | grep -oE "Opening advisory database at '[^']+'" | head -n 1 | cut -d"'" -f2 || true)
fi
if [ -z "$url_folder" ]; then
  echo "cargo-deny did not say where it opens the advisory database" >&2
  exit 1
fi
mkdir -p "$(dirname "$url_folder")"
ln -sfn "$(realpath "$checkout")" "$url_folder"
echo "advisories: the snapshot of $date (GitHub is out of reach)"
cargo deny --offline --config "$config" check
