#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target of BUILD_DIR for SECONDS each, from its committed seeds
# (tests/fuzz/corpus/<name>/) plus what earlier runs found (BUILD_DIR/tests/fuzz/corpus/<name>/,
# where new inputs go). A crash stops with the input saved as
# BUILD_DIR/tests/fuzz/<name>-crash-<sha1> (or -timeout-, -oom-); see docs/TESTING.md.
set -euo pipefail
build=${1:?usage: run_fuzz.sh BUILD_DIR SECONDS}
seconds=${2:-60}
src=$(cd "$(dirname "$0")" && pwd)
out=$build/tests/fuzz
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || true)}
status=0
for exe in "$out"/*_fuzz; do
  name=$(basename "$exe" _fuzz)
  mkdir -p "$out/corpus/$name"
  echo "== $name: ${seconds}s"
  if ! "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/$name-" "$out/corpus/$name" "$src/corpus/$name" 2>"$out/$name.log"; then
    echo "FAILED: $name (log: $out/$name.log)"; tail -n 40 "$out/$name.log"; status=1
  else
    grep -E 'stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$out/$name.log"
  fi
done
exit $status
