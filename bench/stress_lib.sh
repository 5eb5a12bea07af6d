#!/usr/bin/env bash
# Helpers shared by bench/flood.sh and bench/soak.sh (sourced, not run):
# finding or building natd, the results folder, natd's memory and counters,
# and the PASS/FAIL verdicts each script ends with.

STRESS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034  # PY and STRESS_SAMPLER_PID are for the callers
PY=/usr/bin/python3  # Debian's python3 (scapy etc.); a python3 earlier in PATH may not be
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# NATD_BIN if set; otherwise build (log in RESULTS_DIR/build.log) //tools:natd (NATD_BAZEL_OUTPUT_BASE
# selects an output base of its own, so a run does not wait on, or disturb,
# another build's Bazel server).
stress_natd_bin() {
  if [ -n "${NATD_BIN:-}" ]; then
    NATD_BIN=$(readlink -f "$NATD_BIN")
  else
    local bazel=(bazel ${NATD_BAZEL_OUTPUT_BASE:+--output_base=$NATD_BAZEL_OUTPUT_BASE})
    echo "building //tools:natd" >&2
    (cd "$STRESS_ROOT" && "${bazel[@]}" build --symlink_prefix=/ //tools:natd) >"$RESULTS_DIR/build.log" 2>&1 || {
      tail -20 "$RESULTS_DIR/build.log" >&2
      return 1
    }
    NATD_BIN=$(cd "$STRESS_ROOT" && "${bazel[@]}" info bazel-bin 2>/dev/null)/tools/natd
  fi
  [ -x "$NATD_BIN" ] || { echo "natd binary $NATD_BIN is not executable" >&2; return 1; }
  export NATD_BIN
}

# The results folder, as bench/lab.sh names its own (bench/results/ is
# gitignored): bench/results/<UTC time>-NAME unless RESULTS_DIR is set.
stress_results_dir() {
  RESULTS_DIR=${RESULTS_DIR:-$STRESS_ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$1}
  mkdir -p "$RESULTS_DIR"
}

# VmRSS, VmHWM (the peak RSS) and VmSize (all it has mapped) of a process,
# in kB ("0 0 0" once it is gone). natd allocates its tables and its packet
# pool at start, so VmSize stays put while RSS grows as pages are first
# touched; a VmSize that grows is new allocation.
stress_mem_kb() {
  awk '/^VmRSS:/{r=$2} /^VmHWM:/{h=$2} /^VmSize:/{v=$2} END{print r+0, h+0, v+0}' "/proc/$1/status" 2>/dev/null ||
    echo "0 0 0"
}

# Samples natd's memory every $2 seconds into $1 ("epoch rss hwm vmsize", kB) in
# the background until natd exits; its pid in STRESS_SAMPLER_PID.
stress_sample_mem() {
  local file=$1 every=$2 pid=${NATD_PID:?natd is not running}
  (
    while kill -0 "$pid" 2>/dev/null; do
      echo "$(date +%s.%N) $(stress_mem_kb "$pid")"
      sleep "$every"
    done
  ) >"$file" &
  # shellcheck disable=SC2034
  STRESS_SAMPLER_PID=$!
}

# A counter from the last block of natd's output in FILE that begins with
# HEADER ("natd totals" or "natd status"); 0 if absent (natd prints drop.*
# lines only when non-zero).
stress_counter() {  # FILE HEADER NAME
  awk -v h="$2" -v n="$3" '$0 == h {t = 1; v = 0} t && $1 == n {v = $2} END {print v + 0}' "$1"
}

# Sessions and mappings summed over the tables of a status dump:
# "  tcp4 ... : M mappings, S sessions" lines. Prints "M S".
stress_table_totals() {
  awk '/^  [a-z]+[46] .*mappings, .* sessions$/ {m += $(NF - 3); s += $(NF - 1)} END {print m + 0, s + 0}' "$1"
}

# A status dump without its per-session lines (a flooded table has 65536 of
# them): the table summaries and the counters.
stress_status_summary() {
  lab_status | grep -v '^    '
}

# Verdicts: stress_check NAME OK(0|1) DETAIL. stress_verdicts prints them
# and returns non-zero if any failed.
STRESS_CHECKS=()
stress_check() {
  local v=FAIL
  [ "$2" = 1 ] && v=PASS
  STRESS_CHECKS+=("$(printf '%-4s  %-34s %s' "$v" "$1" "$3")")
}
stress_verdicts() {
  local line failed=0
  for line in "${STRESS_CHECKS[@]}"; do
    echo "$line"
    case $line in FAIL*) failed=1 ;; esac
  done
  return $failed
}

# The run's results folder, natd binary and a lab of its own
# (natd-NAME-<pid>), brought up; on exit, however it comes, the lab goes
# down (natd stopped, whatever runs in the namespaces killed) and what the
# run left is kept in the results folder: natd's stdout without the
# per-session lines of status dumps, the tails of its stderr and log.
stress_lab_up() {  # NAME
  stress_results_dir "$1"
  stress_natd_bin
  export LAB_PREFIX=natd-$1-$$
  LAB_DIR=$(mktemp -d "/tmp/natd-$1.XXXXXX")
  export LAB_DIR
  # shellcheck source=../tests/lab/lab.sh
  source "$STRESS_ROOT/tests/lab/lab.sh"
  lab_up
  trap stress_cleanup EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
}

stress_cleanup() {
  local rc=$?
  trap - EXIT
  set +e
  [ -n "${STRESS_SAMPLER_PID:-}" ] && kill "$STRESS_SAMPLER_PID" 2>/dev/null
  lab_down
  [ -f "$LAB_DIR/natd.out" ] && grep -v '^    ' "$LAB_DIR/natd.out" >"$RESULTS_DIR/natd.out"
  for f in natd.err natd.log; do [ -f "$LAB_DIR/$f" ] && tail -n 200 "$LAB_DIR/$f" >"$RESULTS_DIR/$f"; done
  rm -rf "$LAB_DIR"
  exit "$rc"
}
