#!/usr/bin/env bash
# Installs what is missing, then runs every test: the whole suite, then the
# unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer (which
# also turns on the engine's debug full-checksum verification), the threaded
# tests under ThreadSanitizer, and each fuzz target for a minute (both built
# by clang-14 in Bazel output bases of their own).
# Ends with one line "N passed, N failed"; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
log=$(mktemp)
# What failed, with the end of each failed test's log: printed again just
# before the last line, because CI shows only the end of the output.
recap=$(mktemp)
trap 'rm -f "$log" "$recap"' EXIT

# The TSan build's output base (clang-14), one per checkout, apart from the gcc
# one; fuzz/run.sh keeps its own.
tsan_base=${XDG_CACHE_HOME:-$HOME/.cache}/natd-bazel-tsan/$(pwd | md5sum | cut -c1-12)

# Runs `bazel test` with the given arguments and adds its summary to the
# totals. With an output base (OUTPUT_BASE=...), Bazel runs apart from the gcc
# build, makes no bazel-* links and stops its server after 15 idle minutes.
run_suite() {
  local label=$1
  shift
  local bazel=(bazel)
  if [ -n "${OUTPUT_BASE:-}" ]; then
    bazel+=(--output_base="$OUTPUT_BASE" --max_idle_secs=900)
    set -- --symlink_prefix=/ "$@"
  fi
  echo "=== $label: bazel test $*"
  "${bazel[@]}" test --keep_going "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
  f=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE|FAILED TO BUILD)' "$log")
  # A build or analysis error can stop bazel before any test line is printed.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  echo "=== $label: $p passed, $f failed"
  if [ "$f" -gt 0 ]; then
    {
      echo "--- $label: what failed"
      grep -E '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE|FAILED TO BUILD)' "$log" ||
        grep -E '^(ERROR|FAILED):' "$log" | tail -n 20
      # Bazel lists each failed test's log file under its summary line.
      grep -oE '^ +/[^ ]+/test\.log$' "$log" | sort -u | while read -r tl; do
        echo "--- the end of $tl"
        tail -n 40 "$tl"
      done
    } >>"$recap"
  fi
  passed=$((passed + p))
  failed=$((failed + f))
}

run_suite "all tests" //...
run_suite "unit tests under ASan+UBSan" --config=asan --test_tag_filters=-local //...
OUTPUT_BASE=$tsan_base run_suite "threaded tests under TSan (clang-14)" --config=tsan \
  //tun:pipeline_test //tests:dataplane_test

# The fuzz targets, a minute each over their corpus (fuzz/README.md): one
# pass or failure per target.
echo "=== fuzz targets (libFuzzer, clang-14, ASan+UBSan): bash fuzz/run.sh 60"
bash fuzz/run.sh 60 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
p=$(grep -cE '^fuzz: [a-z_]+ PASSED' "$log")
f=$(grep -cE '^fuzz: [a-z_]+ FAILED' "$log")
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
echo "=== fuzz targets: $p passed, $f failed"
if [ "$f" -gt 0 ]; then
  { echo "--- fuzz targets: what failed"; grep -E '^fuzz: ' "$log" | tail -n 30; } >>"$recap"
fi
passed=$((passed + p))
failed=$((failed + f))

if [ -s "$recap" ]; then
  echo "=== recap of the failures"
  cat "$recap"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
