#!/usr/bin/env bash
# Installs what is missing, then runs every test: the whole suite, then the
# unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer (which
# also turns on the engine's debug full-checksum verification).
# Ends with one line "N passed, N failed"; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Runs `bazel test` with the given arguments and adds its summary to the totals.
run_suite() {
  local label=$1
  shift
  echo "=== $label: bazel test $*"
  bazel test --keep_going "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
  f=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE|FAILED TO BUILD)' "$log")
  # A build or analysis error can stop bazel before any test line is printed.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  echo "=== $label: $p passed, $f failed"
  passed=$((passed + p))
  failed=$((failed + f))
}

run_suite "all tests" //...
run_suite "unit tests under ASan+UBSan" --config=asan --test_tag_filters=-local //...

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
