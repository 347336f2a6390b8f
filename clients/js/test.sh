#!/usr/bin/env bash
# Builds the client, checks its size and runs every test (node --test) against the
# real server binary: $SWITCHBOARD_BIN, else the repository's target/debug/switchboard.
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund
rm -rf dist
npx tsc -p tsconfig.json
npx tsc -p test/tsconfig.json # the README's usage, type-checked against dist/*.d.ts
node scripts/size.js
export SWITCHBOARD_BIN="${SWITCHBOARD_BIN:-$(cd ../.. && pwd)/target/debug/switchboard}"
if [ ! -x "$SWITCHBOARD_BIN" ]; then
  echo "no server binary at $SWITCHBOARD_BIN: build it (cargo build -p server) or set SWITCHBOARD_BIN" >&2
  exit 1
fi
# Node 22 has WebSocket built in; Node 20 needs the flag
flags=()
[ "$(node -p 'typeof WebSocket')" = function ] || flags+=(--experimental-websocket)
node "${flags[@]}" --test --test-reporter=spec --test-concurrency=1 --test-timeout=120000 "$@" test/*.test.js
