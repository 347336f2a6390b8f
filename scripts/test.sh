#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests, the TypeScript and Python
# clients' own tests, then the Playwright suite in Debian's Chromium against the real
# server (and the examples/ apps). Installs what is missing first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '\n==> %s\n' "$*"; }
start=$(date +%s)

step "tools"
scripts/bootstrap.sh test
export PATH="$root/end2end/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step "build the site (server + WASM, debug)"
# cargo-leptos appends `--cfg erase_components` to RUSTFLAGS itself in debug builds
unset RUSTFLAGS
# --split: the lazy routes' code in chunks of its own (without it the page never
# hydrates: docs/development.md)
cargo leptos build --split

step "Rust unit and integration tests"
# Exactly the flags and LEPTOS_* variables cargo-leptos compiled with (leptos reads
# some with option_env!), so cargo test reuses its build. (It still relinks the server
# binary with its dev-dependencies' features; with these variables that binary asks
# for the same bundle names, which the end-to-end tests below then check.)
# Only for this command: a server started later with LEPTOS_* in its environment would
# take cargo-leptos's site settings (a relative site root) instead of its own.
env RUSTFLAGS="--cfg erase_components" \
  LEPTOS_OUTPUT_NAME=switchboard LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
  LEPTOS_SITE_ADDR=127.0.0.1:3000 LEPTOS_RELOAD_PORT=3001 LEPTOS_LIB_DIR=frontend \
  LEPTOS_BIN_DIR=server LEPTOS_JS_MINIFY=false LEPTOS_HASH_FILES=false \
  cargo test --workspace --exclude frontend

step "the TypeScript client's tests (node --test, against the server binary)"
SWITCHBOARD_BIN="$root/target/debug/switchboard" clients/js/test.sh

step "the Python client's tests (pytest, against the server binary)"
SWITCHBOARD_BIN="$root/target/debug/switchboard" clients/python/test.sh

step "the examples' dependencies (FastAPI backend, React page), for the Playwright suite"
# examples/fastapi-app/.venv: FastAPI, uvicorn and clients/python (only when changed)
examples/fastapi-app/run.sh --install
# the page links the TypeScript client built above (clients/js/dist); type-checked
# here, built by the spec itself (end2end/tests/support/examples.ts)
(cd examples/react-app \
  && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; } \
  && npx tsc --noEmit -p tsconfig.json)

step "the release front end, split (what scripts/run.sh serves), for the Playwright suite"
# the WASM in its release profile with the lazy routes split out: the suite then drives
# what users get (the debug server binary serves it: the same file names)
unset RUSTFLAGS
cargo leptos build --release --split --frontend-only

step "end-to-end tests (Playwright, Chromium)"
(cd end2end && npx playwright test)

step "all tests passed in $(( $(date +%s) - start )) s"
