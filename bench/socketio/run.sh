#!/usr/bin/env bash
# Socket.IO x2 + Redis fan-out run: starts a private redis-server, two server.js nodes,
# runs load.js against both, prints its JSON line, and stops everything on exit.
#
#   bash bench/socketio/run.sh [load.js options]
#   bash bench/socketio/run.sh --subscribers 1000 --rate 100 --duration 10
#   bash bench/socketio/run.sh --subscribers 100 --rate 0 --window 256 --duration 10
#
# Defaults: --subscribers 1000 --rate 100 --duration 10. Server/redis logs go to $LOG_DIR
# (default: a temp dir, deleted after a successful run, kept after a failure).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

REDIS_SERVER="${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}"
NODE="${NODE:-node}"
if [[ -z "${LOG_DIR:-}" ]]; then
  LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/socketio-bench.XXXXXX")"
  TEMP_LOGS=1 # removed on success, kept on failure
fi
mkdir -p "$LOG_DIR"

if [[ ! -d node_modules ]]; then
  echo "[run] node_modules missing: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi

PIDS=()
cleanup() {
  local rc=$? pid
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] && wait "$pid" 2>/dev/null || true
  done
  if [[ $rc -eq 0 && -n "${TEMP_LOGS:-}" ]]; then rm -rf "$LOG_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# three free TCP ports (held open together so they differ, then released)
read -r REDIS_PORT PORT_A PORT_B < <("$NODE" -e '
  const net = require("node:net");
  const ss = [0, 1, 2].map(() => net.createServer().listen(0, "127.0.0.1"));
  Promise.all(ss.map((s) => new Promise((r) => s.on("listening", r)))).then(() => {
    console.log(ss.map((s) => s.address().port).join(" "));
    ss.forEach((s) => s.close());
  });')

"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --daemonize no --loglevel warning >"$LOG_DIR/redis.log" 2>&1 &
PIDS+=($!)
REDIS_PID=$!
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
for _ in $(seq 100); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || { echo "[run] redis did not start (see $LOG_DIR/redis.log)" >&2; exit 1; }

SERVER_PIDS=()
for port in "$PORT_A" "$PORT_B"; do
  "$NODE" server.js "$port" "$REDIS_URL" >"$LOG_DIR/server-$port.log" 2>&1 &
  PIDS+=($!)
  SERVER_PIDS+=($!)
done
for port in "$PORT_A" "$PORT_B"; do
  for _ in $(seq 200); do
    grep -q "^listening $port" "$LOG_DIR/server-$port.log" 2>/dev/null && break
    sleep 0.05
  done
  grep -q "^listening $port" "$LOG_DIR/server-$port.log" || {
    echo "[run] server on $port did not start:" >&2
    cat "$LOG_DIR/server-$port.log" >&2
    exit 1
  }
done
echo "[run] redis :$REDIS_PORT, socket.io nodes :$PORT_A :$PORT_B (logs in $LOG_DIR)" >&2

# defaults, overridable by the arguments given (later options win in load.js)
"$NODE" load.js --nodes "127.0.0.1:$PORT_A,127.0.0.1:$PORT_B" \
  --subscribers 1000 --rate 100 --duration 10 \
  --server-pids "${SERVER_PIDS[0]},${SERVER_PIDS[1]},$REDIS_PID" \
  "$@" &
LOAD_PID=$!
PIDS+=($LOAD_PID)
wait "$LOAD_PID" # in the background so that INT/TERM reach the trap at once
