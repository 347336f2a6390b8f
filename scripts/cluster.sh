#!/usr/bin/env bash
# A local 3-node cluster behind nginx, for trying several nodes (docs/deployment.md):
# its own redis-server (noeviction, nothing on disk) and PostgreSQL (a cluster of its
# own in the data folder), three `switchboard` nodes that share a signing secret, the
# broker and the database, and nginx on http://localhost:8080 in front (WebSocket
# upgrade, round robin, no sticky sessions). Ctrl-C stops everything.
#
#   scripts/cluster.sh                 # builds the release app first if needed
#   SWITCHBOARD_CLUSTER_PORT=9000 scripts/cluster.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
port=${SWITCHBOARD_CLUSTER_PORT:-8080}
dir=${SWITCHBOARD_CLUSTER_DIR:-$root/data-cluster}
redis_port=${SWITCHBOARD_CLUSTER_REDIS_PORT:-6390}
pg_port=${SWITCHBOARD_CLUSTER_PG_PORT:-5490}
say() { echo "[cluster] $*" >&2; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
# PostgreSQL refuses to run as root: as root, it runs as the postgres user
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ ! -x target/release/switchboard ] || [ ! -d target/site/pkg ]; then
  scripts/bootstrap.sh run
  export PATH="$root/end2end/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  say "building the release app (cargo leptos build --release --split)"
  cargo leptos build --release --split
fi

mkdir -p "$dir/nginx"
secret="$dir/auth-secret"
if [ ! -s "$secret" ]; then
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$secret")
fi

pids=()
stop() {
  say "stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" stop -m fast >/dev/null 2>&1 || true
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --maxmemory-policy noeviction > "$dir/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

if [ ! -d "$dir/pg/data" ]; then
  mkdir -p "$dir/pg"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/pg"
  as_pg "$pg_bin/initdb" -D "$dir/pg/data" -A trust -U postgres >/dev/null
fi
as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w \
  -o "-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1" start >/dev/null
as_pg "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'switchboard'" | grep -q 1 \
  || as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres switchboard

upstreams=""
# three nodes on one machine: its cores shared out between them
workers=$(( $(nproc) / 3 )); [ "$workers" -ge 1 ] || workers=1
for i in 1 2 3; do
  node_port=$((3100 + i))
  SWITCHBOARD_AUTH_SECRET_FILE="$secret" SWITCHBOARD_SITE_ROOT="$root/target/site" \
    target/release/switchboard --port "$node_port" --data-dir "$dir/node$i" --worker-threads "$workers" \
      --broker "redis://127.0.0.1:$redis_port/" \
      --database "postgres://postgres@127.0.0.1:$pg_port/switchboard" \
      --allowed-hosts "localhost:$port,127.0.0.1:$port" --public-url "http://localhost:$port" \
      > "$dir/node$i.log" 2>&1 &
  pids+=($!)
  upstreams+="    server 127.0.0.1:$node_port;"$'\n'
done

cat > "$dir/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body;
  proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fastcgi;
  uwsgi_temp_path $dir/nginx/uwsgi;
  scgi_temp_path $dir/nginx/scgi;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  upstream switchboard {
$upstreams  }
  # the one-time sign-in code is node 1's (each node prints its own)
  upstream first { server 127.0.0.1:3101; }
  server {
    listen 127.0.0.1:$port;
    location = /login { proxy_pass http://first; proxy_set_header Host \$host:\$server_port; }
    location / {
      proxy_pass http://switchboard;
      proxy_http_version 1.1;
      proxy_set_header Host \$host:\$server_port;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_read_timeout 1h;
      proxy_buffering off;
    }
  }
}
CONF
"$nginx_bin" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" &
pids+=($!)

for i in 1 2 3; do
  for _ in $(seq 100); do grep -q "listening on" "$dir/node$i.log" 2>/dev/null && break; sleep 0.1; done
done
link=$(grep -o "/login?code=[0-9a-f]*" "$dir/node1.log" | head -1 || true)
say "3 nodes on 127.0.0.1:3101-3103, Redis on $redis_port, PostgreSQL on $pg_port, logs in $dir"
say "open http://localhost:$port$link"
say "a token for scripts: target/release/switchboard token create --sub me --operator --auth-secret-file $secret"
wait -n "${pids[@]}" || true
