#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests, then the Playwright suite in
# Debian's Chromium against the real server. Installs what is missing first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '\n==> %s\n' "$*"; }
start=$(date +%s)

step "tools"
scripts/bootstrap.sh test
export PATH="$root/end2end/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# cargo-leptos builds with this cfg in debug; the host tests use it too so the server
# and app crates are compiled once, not twice.
export RUSTFLAGS="${RUSTFLAGS:-} --cfg erase_components"

step "build the site (server + WASM, debug)"
cargo leptos build

step "Rust unit and integration tests"
cargo test --workspace --exclude frontend

step "end-to-end tests (Playwright, Chromium)"
(cd end2end && npx playwright test)

step "all tests passed in $(( $(date +%s) - start )) s"
