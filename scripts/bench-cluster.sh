#!/usr/bin/env bash
# Several nodes against one, same run (docs/BENCHMARKS.md "Several nodes"): a Redis of
# its own, two nodes on it (--broker), one node on the in-memory hub, and the
# Socket.IO 4.8 peer (two nodes, @socket.io/redis-adapter, bench/socketio). Each
# scenario runs against each target in turn, --repeat times.
#   cargo build --release -p server -p bench && scripts/bench-cluster.sh [--repeat 3]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
repeat=3
[ "${1:-}" = --repeat ] && repeat=$2
ulimit -n 65536 || true
bin=target/release/switchboard
load=target/release/switchboard-load
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --maxmemory-policy noeviction >/dev/null &
pids+=($!)
redis_pid=$!
sleep 0.5
node() { # name port [args]
  local name=$1 port=$2; shift 2
  "$bin" --port "$port" --log warn --auth off --max-connections-per-ip 1000000 --publish-rate-per-s 10000000 \
    --data-dir "$tmp/$name" "$@" >/dev/null 2>"$tmp/$name.log" &
  pids+=($!)
  eval "pid_$name=$!"
}
a=$(free_port); b=$(free_port); one=$(free_port)
# two nodes on one machine: a core each (as each Socket.IO node is one Node.js thread);
# the single node has the machine to itself
node a "$a" --broker "redis://127.0.0.1:$redis_port/" --broker-prefix bench: --worker-threads 1
node b "$b" --broker "redis://127.0.0.1:$redis_port/" --broker-prefix bench: --worker-threads 1
node one "$one"
sleep 1

for r in $(seq "$repeat"); do
  echo "## round $r"
  # server CPU: the node, or both nodes and Redis (as run.sh reports Socket.IO's)
  "$load" fanout --addr "127.0.0.1:$one" --pid "$pid_one" --subscribers 1000 --rate 100 --duration 10 --via http
  "$load" fanout --addr "127.0.0.1:$a" --also "127.0.0.1:$b" --pid "$pid_a" --pid "$pid_b" --pid "$redis_pid" --subscribers 1000 --rate 100 --duration 10 --via http
  "$load" fanout --addr "127.0.0.1:$one" --pid "$pid_one" --subscribers 100 --rate 0 --window 256 --duration 10
  "$load" fanout --addr "127.0.0.1:$a" --also "127.0.0.1:$b" --pid "$pid_a" --pid "$pid_b" --pid "$redis_pid" --subscribers 100 --rate 0 --window 256 --duration 10
  "$load" resume --addr "127.0.0.1:$one" --missed 1000 --rounds 5
  "$load" resume --addr "127.0.0.1:$a" --also "127.0.0.1:$b" --missed 1000 --rounds 5
  if [ -f bench/socketio/run.sh ]; then
    bash bench/socketio/run.sh --subscribers 1000 --rate 100 --duration 10
    bash bench/socketio/run.sh --subscribers 100 --rate 0 --window 256 --duration 10
  fi
done
