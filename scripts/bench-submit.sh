#!/bin/bash
set -u
# The latency of POST /api/v1/workflows (200 sequential, median and p99) of two server
# builds, alternating, two rounds: scripts/bench-submit.sh OLD_BINARY NEW_BINARY
# SERVER_ARGS (optional) go to both servers, e.g. SERVER_ARGS="--database postgres://…".
measure() { # bin label
  local d=$(mktemp -d) port=$((4000 + RANDOM % 1000))
  $1 --port $port --log warn --auth off --inline-pipelines on --concurrency 8 --data-dir $d ${SERVER_ARGS:-} >/dev/null 2>&1 &
  local pid=$!
  for i in $(seq 100); do curl -sf localhost:$port/healthz >/dev/null && break; sleep 0.05; done
  for i in $(seq 200); do
    curl -s -o /dev/null -w '%{time_total}\n' -X POST localhost:$port/api/v1/workflows -H 'content-type: application/json' -d '{"pipeline":{"name":"lat","stages":[{"id":"a","run":"echo hi"}]}}'
  done | sort -n | awk -v l="$2" '{a[NR]=$1} END {printf "%s: median %.2f ms, p99 %.2f ms (n=%d)\n", l, a[int(NR/2)]*1000, a[int(NR*0.99)]*1000, NR}'
  kill $pid; wait $pid 2>/dev/null; rm -rf $d
}
for r in 1 2; do
  measure "$1" "before (round $r)"
  measure "$2" "after  (round $r)"
done
