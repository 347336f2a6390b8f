#!/usr/bin/env bash
# Installs every tool the build and the tests need, skipping what is already there.
# Idempotent: safe to run on every `run`/`test`. Why each step: docs/development.md.
#   scripts/bootstrap.sh run     -> rust wasm target, wasm-bindgen-cli, cargo-leptos,
#                                   npm packages of end2end/ (binaryen's wasm-opt)
#   scripts/bootstrap.sh test    -> the above + Debian chromium and redis-server
set -euo pipefail

CARGO_LEPTOS_VERSION=0.3.11
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen in Cargo.lock
root=$(cd "$(dirname "$0")/.." && pwd)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export PATH="$cargo_home/bin:$PATH"
# The tools are built, not run, for speed: no fat LTO, many codegen units.
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16

say() { printf '[bootstrap] %s\n' "$*"; }

# cargo-leptos and wasm-bindgen-cli do not install with --locked as published on this
# toolchain (a lock pin needs a newer rustc / a yanked crate). Unpack the crate, re-pin
# one dependency, install from the path.
install_patched() { # crate version dep dep_version
  local crate=$1 version=$2 dep=$3 dep_version=$4 src work
  src=$(ls -d "$cargo_home"/registry/src/*/"$crate-$version" 2>/dev/null | head -n1 || true)
  if [ -z "$src" ]; then
    # A --locked install of the published crate fails on this toolchain, but leaves the
    # crate's source unpacked in the registry, which is all we need from it.
    say "unpacking $crate $version source"
    cargo install "$crate" --version "$version" --locked >/dev/null 2>&1 || true
    src=$(ls -d "$cargo_home"/registry/src/*/"$crate-$version" 2>/dev/null | head -n1 || true)
    [ -n "$src" ] || { say "could not unpack $crate $version from crates.io"; exit 1; }
  fi
  work=$(mktemp -d)
  cp -r "$src" "$work/$crate"
  rm -f "$work/$crate/.cargo-ok" "$work/$crate/.cargo_vcs_info.json"
  (cd "$work/$crate" && cargo update -p "$dep" --precise "$dep_version" \
     && cargo install --path . --locked "${@:5}")
}

ensure_wasm_target() {
  if rustup target list --installed | grep -qx wasm32-unknown-unknown; then return; fi
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
}

ensure_wasm_bindgen() {
  if wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\b"; then return; fi
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (6-10 min once)"
  install_patched wasm-bindgen-cli "$WASM_BINDGEN_VERSION" webpki-roots 1.0.10
}

ensure_cargo_leptos() {
  if cargo leptos --version 2>/dev/null | grep -q " $CARGO_LEPTOS_VERSION\b"; then return; fi
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (15-30 min once)"
  install_patched cargo-leptos "$CARGO_LEPTOS_VERSION" cargo-util-schemas 0.14.1 --features no_downloads
}

ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then return; fi
  say "installing Debian chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
}

# the cluster tests start their own redis-server (and PostgreSQL) on free ports
ensure_services() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  if [ ${#missing[@]} -eq 0 ]; then return; fi
  say "installing Debian ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_npm() {
  if [ -d "$root/end2end/node_modules/@playwright/test" ] && [ -d "$root/end2end/node_modules/binaryen" ]; then return; fi
  say "installing npm packages of end2end/"
  (cd "$root/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
}

what=${1:-run}
ensure_wasm_target
ensure_wasm_bindgen
ensure_cargo_leptos
ensure_npm
if [ "$what" = test ]; then
  ensure_chromium
  ensure_services
fi
say "tools ready"
