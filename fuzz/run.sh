#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan + UBSan; fuzz/README.md) and
# runs each over its corpus for SECONDS (default 60), one after another.
#
#   bash fuzz/run.sh [SECONDS [LIBFUZZER_FLAG...]]
#
# Prints one line per target, "fuzz: <target> PASSED|FAILED ...", and exits
# non-zero if any target crashed (or the build failed). New inputs a run finds
# go to a scratch directory, never into the repository, unless FUZZ_MERGE=1:
# then those that add coverage are merged into fuzz/corpus/<target>/. A crash
# leaves its input under $FUZZ_ARTIFACTS (default /tmp/natd-fuzz-artifacts).
#
# Environment: FUZZ_TARGETS (default: all three), FUZZ_OUTPUT_BASE (the
# clang build's own Bazel output base), FUZZ_ARTIFACTS, FUZZ_MERGE.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift $(($# > 0 ? 1 : 0))
extra_flags=("$@")
read -r -a targets <<<"${FUZZ_TARGETS:-packet_view_fuzz translate_fuzz port_set_fuzz}"
# One output base per checkout, apart from the gcc builds' (a different CC
# regenerates Bazel's C++ toolchain, which would throw their cache away).
output_base=${FUZZ_OUTPUT_BASE:-${XDG_CACHE_HOME:-$HOME/.cache}/natd-bazel-fuzz/$(pwd | md5sum | cut -c1-12)}
artifacts=${FUZZ_ARTIFACTS:-/tmp/natd-fuzz-artifacts}
# --symlink_prefix=/: no bazel-* links in the checkout (they belong to the
# gcc build); --max_idle_secs: CI does not keep this server around.
bazel=(bazel --output_base="$output_base" --max_idle_secs=900)
common=(--config=fuzz --symlink_prefix=/)

# Input size limits per target: a packet (IPv6 extension headers can make
# one a few KB), a sequence of packets, a port-set spec.
max_len() {
  case $1 in
    translate_fuzz) echo 16384 ;;
    port_set_fuzz) echo 256 ;;
    *) echo 4096 ;;
  esac
}

labels=()
for t in "${targets[@]}"; do labels+=("//fuzz:$t"); done
echo "fuzz: building ${targets[*]} with clang-14 (output base $output_base)"
if ! "${bazel[@]}" build "${common[@]}" "${labels[@]}"; then
  echo "fuzz: the build failed"
  for t in "${targets[@]}"; do echo "fuzz: $t FAILED (not built)"; done
  exit 1
fi
bin=$("${bazel[@]}" info "${common[@]}" bazel-bin 2>/dev/null)

symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
[ -x "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH=$symbolizer
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts"

failed=0
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus" "$work/$t"
  log=$work/$t.log
  echo "fuzz: running $t for ${seconds}s over $(ls "$corpus" | wc -l) corpus files"
  # The first directory receives new inputs; the repository's corpus is read only.
  timeout --kill-after=30 $((seconds + 120)) "$bin/fuzz/$t" "$work/$t" "$corpus" \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "${extra_flags[@]}" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -oE '(DONE|INITED) +cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | sed -E 's/(DONE|INITED) +//')
  if [ "$rc" -eq 0 ]; then
    echo "fuzz: $t PASSED (${execs:-?} executions in ${seconds}s, $cov, $(ls "$work/$t" | wc -l) new inputs)"
    if [ "${FUZZ_MERGE:-0}" = 1 ] && [ -n "$(ls "$work/$t")" ]; then
      "$bin/fuzz/$t" -merge=1 -max_len="$(max_len "$t")" "$corpus" "$work/$t" >"$work/$t.merge.log" 2>&1 &&
        echo "fuzz: $t merged into $corpus ($(ls "$corpus" | wc -l) files)"
    fi
  else
    failed=$((failed + 1))
    echo "fuzz: $t FAILED (exit $rc after ${execs:-?} executions); the end of its log:"
    grep -vE '^#[0-9]+ ' "$log" | tail -40 | sed 's/^/    /'
    crash=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -1 | sed 's/Test unit written to //')
    if [ -n "$crash" ]; then
      echo "fuzz: $t crash input: $crash"
      echo "fuzz:   reproduce: $bin/fuzz/$t $crash"
      echo "fuzz:   keep as a regression: cp $crash fuzz/corpus/$t/ && bazel test //nat:fuzz_corpus_test"
    fi
  fi
done
exit $((failed > 0))
