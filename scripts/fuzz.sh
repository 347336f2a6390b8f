#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of Switchboard's parsers: the targets
# in fuzz/fuzz_targets/, each from its seeds in fuzz/corpus/TARGET/. Not part of the
# test command (scripts/test.sh, .ci/run): run it by hand, or on a schedule.
#   scripts/fuzz.sh                       -> every target, FUZZ_SECONDS (30) each
#   scripts/fuzz.sh token queries         -> those targets only
#   FUZZ_SECONDS=600 scripts/fuzz.sh ansi -> longer
#   FUZZ_RUNS=10000000 scripts/fuzz.sh token -> a number of executions instead of a time
#   FUZZ_BUILD_ARGS=...                   -> cargo-fuzz's build options; the default,
#                                            --debug-assertions, makes an integer overflow
#                                            a crash too. "--debug-assertions --sanitizer
#                                            none": a faster build and run without ASan
#                                            (the parsers are safe Rust; ASan is the default)
# Prints one line per target (libFuzzer's runs) and exits non-zero when any target
# crashed, timed out or ran out of memory: the input that did it is in
# fuzz/artifacts/TARGET/, replayed by `cargo fuzz run TARGET THAT_FILE` (with the same
# environment as below). New inputs libFuzzer finds go to fuzz/work/corpus/TARGET/
# (ignored by git): copy a telling one into fuzz/corpus/TARGET/ to keep it as a seed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export PATH="$cargo_home/bin:$PATH"
seconds=${FUZZ_SECONDS:-30}
default_build_args="--debug-assertions"
read -r -a build_args <<<"${FUZZ_BUILD_ARGS-$default_build_args}"
say() { printf '[fuzz] %s\n' "$*"; }

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  say "installing cargo-fuzz"
  # a tool: built for speed of building (no fat LTO), as scripts/bootstrap.sh does
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install cargo-fuzz --locked \
    || CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 cargo install cargo-fuzz
fi

# cargo-fuzz passes nightly-only flags (-Zsanitizer, ...): RUSTC_BOOTSTRAP=1 makes the
# stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
# The same views as the debug builds and tests (cargo-leptos sets this cfg): a faster
# build. cargo-fuzz appends RUSTFLAGS to its own flags. No LEPTOS_* variables are
# needed: leptos reads them with option_env! only for a served site's file names.
export RUSTFLAGS="--cfg erase_components"

# fuzz/ is a workspace of its own (the root one excludes it): its lock starts from the
# root's, so it builds the versions the project is tested with (cargo adds libfuzzer-sys).
if [ ! -f fuzz/Cargo.lock ] || [ Cargo.lock -nt fuzz/Cargo.lock ]; then
  cp Cargo.lock fuzz/Cargo.lock
fi

all=()
for f in fuzz/fuzz_targets/*.rs; do
  all+=("$(basename "$f" .rs)")
done
if [ $# -gt 0 ]; then
  targets=("$@")
  for t in "${targets[@]}"; do
    [ -f "fuzz/fuzz_targets/$t.rs" ] || { say "no target $t (there are: ${all[*]})"; exit 2; }
  done
else
  targets=("${all[@]}")
fi

say "building ${targets[*]}"
if [ $# -eq 0 ]; then
  cargo fuzz build "${build_args[@]}"
else
  for t in "${targets[@]}"; do
    cargo fuzz build "${build_args[@]}" "$t"
  done
fi

mkdir -p fuzz/work/logs
failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/work/corpus/$t" "fuzz/corpus/$t"
  log="fuzz/work/logs/$t.log"
  if [ -n "${FUZZ_RUNS:-}" ]; then limit=(-runs="$FUZZ_RUNS"); what="$FUZZ_RUNS runs"; else limit=(-max_total_time="$seconds"); what="$seconds s"; fi
  say "running $t for $what (log: $log)"
  # the first corpus folder takes what libFuzzer finds; the seeds are only read
  rc=0
  cargo fuzz run "${build_args[@]}" "$t" "fuzz/work/corpus/$t" "fuzz/corpus/$t" -- \
    "${limit[@]}" -rss_limit_mb=2048 -timeout=5 >"$log" 2>&1 || rc=$?
  runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n1 | awk '{print $2 " runs in " $5 " s"}' || true)
  if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
    summary+=("$(printf '%-16s ok       %s' "$t" "$runs")")
  else
    failed+=("$t")
    artifact=$(grep -Eo 'Test unit written to [^ ]+' "$log" | tail -n1 | awk '{print $5}' || true)
    summary+=("$(printf '%-16s FAILED   exit %s%s; log %s' "$t" "$rc" "${artifact:+, input $artifact}" "$log")")
    say "$t failed; the end of its log:"
    tail -n 40 "$log" >&2
  fi
done

printf '\n'
for line in "${summary[@]}"; do
  say "$line"
done
if [ ${#failed[@]} -gt 0 ]; then
  say "failed: ${failed[*]}"
  exit 1
fi
say "all ${#targets[@]} targets ran without a crash"
