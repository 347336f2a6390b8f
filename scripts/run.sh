#!/usr/bin/env bash
# Builds the app (release) and serves it on http://127.0.0.1:3000 with the embedded
# defaults: data in ./data (created on first run), no external service.
# Extra arguments go to the server, e.g. `scripts/run.sh -- --port 8080`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/bootstrap.sh run
# wasm-opt from npm's binaryen (Debian's is too old: its output never hydrates)
export PATH="$root/end2end/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# --split: the agents and topic pages are loaded when first opened (lazy routes)
exec cargo leptos serve --release --split "$@"
