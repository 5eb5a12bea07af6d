#!/usr/bin/env bash
# natd soaked in churn, in the namespace lab (../shared/NETLAB.md): for
# --duration seconds, many short TCP and UDP flows (each on a new source
# port, IPv4 and IPv6), ping every 2 s (ICMP echo mappings) and one long
# TCP flow at a modest rate, after a 3 s full-speed TCP transfer that
# touches every buffer of natd's packet pool once (see "Prime" below).
# natd's resident memory is sampled all along.
# Then the traffic stops and natd's short timeouts run out; the script
# waits (bounded) until its tables are empty, stops natd and checks that
#   - resident memory is flat after warm-up, and natd maps no new memory,
#   - every mapping and session expired (inserted == removed, tables empty),
#   - every packet buffer came back (natd's clean-stop line, pool_free),
#   - the pipeline's packets balance: read = written + dropped + status,
#   - the churn's flows completed and natd stopped with status 0.
#
# Usage: bash bench/soak.sh [--duration S] [--tcp-rate F] [--udp-rate F] [--long-mbps M]
#                           [--warmup S] [--sample S] [--status-every S]
#                           [--expiry-wait S] [--flat-mb MB] [natd flags...]
#   --duration S      seconds of churn (default 600)
#   --tcp-rate F      new TCP flows a second (default 50)
#   --udp-rate F      new UDP flows a second (default 50)
#   --long-mbps M     rate of the long TCP flow (default 50)
#   --warmup S        RSS samples before this are warm-up (default: the
#                     shorter of 150 s, past the 2 min UDP timeout, and half the duration)
#   --sample S        RSS sample period (default 10)
#   --status-every S  a status dump (table sizes) every S s of churn (default 60; 0: none)
#   --expiry-wait S   the longest wait for the tables to empty (default 180)
#   --flat-mb MB      after warm-up RSS may rise this much above its first sample (default 4)
#   anything else is passed to natd, after --udp_timeout=2m (its minimum)
#   --tcp_transitory_timeout=10s --tcp_established_timeout=60s --icmp_timeout=10s
#   (later flags win). natd's own defaults otherwise, so its tables (2^18
#   sessions each) and buffers are made resident at start (--prefault): a
#   leak shows as growth over a flat line. With --prefault=false, pages
#   become resident as sessions first land on them, and RSS creeps up for
#   far longer than 10 minutes (to a bound, VmSize), which hides a leak.
# NATD_BIN=path skips the build; NATD_BAZEL_OUTPUT_BASE picks Bazel's output base.
# Bounded: duration + expiry wait + ~20 s. Needs root. Prints the figures
# and one PASS/FAIL per criterion; exits 1 if any fails. Results in
# bench/results/<time>-soak/ (summary.txt, figures.json, mem.txt, logs).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=stress_lib.sh
source "$here/stress_lib.sh"

DURATION=600 TCP_RATE=50 UDP_RATE=50 LONG_MBPS=50 WARMUP='' SAMPLE=10 STATUS_EVERY=60
EXPIRY_WAIT=180 FLAT_MB=4
NATD_FLAGS=(--udp_timeout=2m --tcp_transitory_timeout=10s --tcp_established_timeout=60s --icmp_timeout=10s)
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --tcp-rate) TCP_RATE=$2; shift 2 ;;
    --udp-rate) UDP_RATE=$2; shift 2 ;;
    --long-mbps) LONG_MBPS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --sample) SAMPLE=$2; shift 2 ;;
    --status-every) STATUS_EVERY=$2; shift 2 ;;
    --expiry-wait) EXPIRY_WAIT=$2; shift 2 ;;
    --flat-mb) FLAT_MB=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) NATD_FLAGS+=("$1"); shift ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 2; }
if [ -z "$WARMUP" ]; then WARMUP=$((DURATION / 2 < 150 ? DURATION / 2 : 150)); fi

stress_lab_up soak

echo "natd: $NATD_BIN ${NATD_FLAGS[*]}"
echo "results: $RESULTS_DIR"
echo "churn: ${DURATION}s of $TCP_RATE TCP + $UDP_RATE UDP new flows/s, ping every 2 s, a long TCP flow at $LONG_MBPS Mbit/s"
lan ping -c1 -W2 198.18.0.1 >/dev/null
lan ping -6 -c1 -W2 fd00:18::1 >/dev/null
wan ping -c1 -W2 198.19.0.1 >/dev/null
wan ping -6 -c1 -W2 2001:db8:19::1 >/dev/null
lab_start_natd "${NATD_FLAGS[@]}"
NATD=$NATD_PID

wan "$PY" "$here/churn.py" server >"$LAB_DIR/churn-server.log" 2>&1 &
for _ in $(seq 100); do grep -q ready "$LAB_DIR/churn-server.log" && break; sleep 0.1; done
grep -q ready "$LAB_DIR/churn-server.log" || { cat "$LAB_DIR/churn-server.log" >&2; exit 1; }

stress_sample_mem "$RESULTS_DIR/mem.txt" "$SAMPLE"
# Prime: a few seconds of TCP at full speed first. natd's packet pool is
# allocated at start but its pages are first touched only when a packet
# fills them; a 64 KB super-packet through every buffer takes a 50 Mbit/s
# flow a minute or more, a full-speed one a second. Without this the pool
# filling in would pass for growth in a short run.
wan iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
for _ in $(seq 50); do [ -n "$(wan ss -Hltn 'sport = :5201')" ] && break; sleep 0.1; done
lan iperf3 -c 198.19.0.2 -p 5201 -t 3 -f m >"$RESULTS_DIR/prime.log" 2>&1 || echo "prime: iperf3 failed" >&2
echo "prime: $(grep receiver "$RESULTS_DIR/prime.log" | awk '{print $(NF-2), $(NF-1)}'); natd RSS $(($(stress_mem_kb "$NATD" | cut -d' ' -f1) / 1024)) MB"
T0=$(date +%s.%N)
lan "$PY" "$here/churn.py" long --duration "$DURATION" --mbps "$LONG_MBPS" >"$RESULTS_DIR/long.json" 2>&1 &
LONG=$!
lan "$PY" "$here/churn.py" client --duration "$DURATION" --tcp-rate "$TCP_RATE" --udp-rate "$UDP_RATE" \
  >"$RESULTS_DIR/churn.json" 2>&1 &
CHURN=$!
# Each ping is a new process, so a new ICMP identifier: a new echo mapping.
(
  end=$((SECONDS + DURATION))
  while [ $SECONDS -lt $end ]; do
    lan ping -n -q -c 2 -i 0.2 -W 1 198.19.0.2 || true
    lan ping -6 -n -q -c 2 -i 0.2 -W 1 2001:db8:19::2 || true
    sleep 2
  done
) >"$LAB_DIR/ping.log" 2>&1 &
PINGS=$!

# Table sizes during the churn, from a status dump now and then.
echo "# seconds mappings sessions" >"$RESULTS_DIR/tables.txt"
next=$STATUS_EVERY
while kill -0 "$CHURN" 2>/dev/null; do
  sleep 1
  t=$(($(date +%s) - ${T0%.*}))
  if [ "$STATUS_EVERY" -gt 0 ] && [ "$t" -ge "$next" ] && [ "$t" -lt "$DURATION" ]; then
    next=$((next + STATUS_EVERY))
    stress_status_summary >"$LAB_DIR/status.txt" || true
    echo "$t $(stress_table_totals "$LAB_DIR/status.txt")" | tee -a "$RESULTS_DIR/tables.txt"
  fi
done
wait "$CHURN" "$LONG" "$PINGS" || true
T_STOP=$(date +%s.%N)
read -r _ HWM_STOP _ < <(stress_mem_kb "$NATD")
cat "$RESULTS_DIR/churn.json" "$RESULTS_DIR/long.json"

# Traffic has stopped: wait for every mapping to expire (bounded).
echo "traffic stopped; waiting up to ${EXPIRY_WAIT}s for natd's tables to empty"
waited=0
while :; do
  stress_status_summary >"$RESULTS_DIR/status-final.txt" || true
  read -r MAPPINGS SESSIONS < <(stress_table_totals "$RESULTS_DIR/status-final.txt")
  echo "  +${waited}s: $MAPPINGS mappings, $SESSIONS sessions"
  if [ "$MAPPINGS" = 0 ] && [ "$SESSIONS" = 0 ]; then break; fi
  if [ "$waited" -ge "$EXPIRY_WAIT" ]; then break; fi
  sleep 10
  waited=$((waited + 10))
done
EXPIRED_AFTER=$waited
read -r RSS_IDLE HWM_IDLE VSZ_IDLE < <(stress_mem_kb "$NATD")
NATD_RC=0
lab_stop_natd || NATD_RC=$?
O=$LAB_DIR/natd.out
T="natd totals"
c() { stress_counter "$O" "$T" "$1"; }
CLEAN_LINE=$(grep -E '^natd: (stopped cleanly|BUG)' "$O" || echo "(no clean-stop line)")
read -r POOL_FREE POOL_SIZE < <(awk '/^natd totals/{t=1} t && $1=="pipeline.pool_free" {f=$2; n=$4} END {print f+0, n+0}' "$O")
PIPE_DROPS=$(awk '/^natd totals/{t=1; s=0} t && $1 ~ /^pipeline\.drop\./ {s+=$2} END {print s+0}' "$O")

"$PY" - "$RESULTS_DIR" <<PY
import json, sys
out = sys.argv[1]
mem = [tuple(map(float, l.split())) for l in open(f"{out}/mem.txt") if len(l.split()) == 4]
churn = [(t - $T0, r / 1024, v / 1024) for t, r, h, v in mem if $T0 <= t <= $T_STOP]
after = [x for x in churn if x[0] >= $WARMUP] or churn[-1:]
warm = [r for t, r, v in after]
vsz = [v for t, r, v in after]
fig = {
    "duration": $DURATION, "warmup": $WARMUP, "natd_flags": "${NATD_FLAGS[*]}",
    "rss_samples_mb": [[round(t), round(r, 1)] for t, r, v in churn],
    "vmsize_first_after_warmup_mb": round(vsz[0], 1), "vmsize_max_after_warmup_mb": round(max(vsz), 1),
    "vmsize_last_mb": round(vsz[-1], 1), "vmsize_growth_mb": round(max(vsz) - vsz[0], 1),
    "rss_first_after_warmup_mb": round(warm[0], 1), "rss_min_after_warmup_mb": round(min(warm), 1),
    "rss_max_after_warmup_mb": round(max(warm), 1), "rss_last_mb": round(warm[-1], 1),
    "rss_growth_mb": round(max(warm) - warm[0], 1), "flat_mb": $FLAT_MB,
    "hwm_at_stop_mb": round($HWM_STOP / 1024, 1), "rss_idle_mb": round($RSS_IDLE / 1024, 1),
    "hwm_idle_mb": round($HWM_IDLE / 1024, 1), "vmsize_idle_mb": round($VSZ_IDLE / 1024, 1),
    "expired_after_s": $EXPIRED_AFTER, "mappings_left": $MAPPINGS, "sessions_left": $SESSIONS,
    "pool_free": $POOL_FREE, "pool_size": $POOL_SIZE, "pipeline_drops": $PIPE_DROPS, "natd_rc": $NATD_RC,
    "counters": {n: int(v) for n, v in [l.split()[:2] for l in open("$O").read().split("natd totals\n")[-1].splitlines()
                                          if len(l.split()) == 2 and l.split()[1].isdigit()]},
}
for f in ("churn", "long"):
    try:
        fig[f] = json.load(open(f"{out}/{f}.json"))
    except Exception:
        fig[f] = {}
json.dump(fig, open(f"{out}/figures.json", "w"), indent=1)
PY
fj() { "$PY" -c "import json,sys; d=json.load(open('$RESULTS_DIR/figures.json')); print(eval(sys.argv[1]))" "$1"; }

READ=$(c pipeline.read) WRITTEN=$(c pipeline.written) DROPPED=$(c pipeline.dropped_by_nat) STATUS=$(c pipeline.status_requests)
HELD=$(c pipeline.held) RELEASED=$(c pipeline.released)
SI=$(c sessions_inserted) SR=$(c sessions_removed) MI=$(c mappings_inserted) MR=$(c mappings_removed)
TCP_OK=$(fj 'd["churn"].get("tcp_ok", 0)') TCP_FAIL=$(fj 'd["churn"].get("tcp_failed", 0)')
UDP_OK=$(fj 'd["churn"].get("udp_ok", 0)') UDP_FAIL=$(fj 'd["churn"].get("udp_failed", 0)')
{
  echo
  echo "natd soak, $(date -u +%FT%TZ), $(nproc) CPUs, natd ${NATD_FLAGS[*]}"
  echo "churn ${DURATION}s: TCP flows $TCP_OK ok / $TCP_FAIL failed, UDP flows $UDP_OK ok / $UDP_FAIL failed;" \
    "long flow $(fj 'd["long"].get("long_mbps", 0)') Mbit/s (ok: $(fj 'd["long"].get("long_ok", False)'))"
  echo "tables during the churn (s mappings sessions): $(grep -v '^#' "$RESULTS_DIR/tables.txt" | paste -sd';' - | sed 's/;/; /g')"
  echo "RSS every ${SAMPLE}s (MB): $(fj '" ".join(str(r) for t, r in d["rss_samples_mb"])')"
  echo "RSS after ${WARMUP}s warm-up: first $(fj 'd["rss_first_after_warmup_mb"]'), min $(fj 'd["rss_min_after_warmup_mb"]')," \
    "max $(fj 'd["rss_max_after_warmup_mb"]'), last $(fj 'd["rss_last_mb"]') MB; VmHWM $(fj 'd["hwm_at_stop_mb"]') MB;" \
    "idle after expiry: RSS $(fj 'd["rss_idle_mb"]') MB"
  echo "VmSize after warm-up: first $(fj 'd["vmsize_first_after_warmup_mb"]'), max $(fj 'd["vmsize_max_after_warmup_mb"]')," \
    "last $(fj 'd["vmsize_last_mb"]') MB; idle after expiry $(fj 'd["vmsize_idle_mb"]') MB"
  echo "expiry: tables held $MAPPINGS mappings, $SESSIONS sessions ${EXPIRED_AFTER}s after the traffic stopped"
  echo "sessions inserted $SI, removed $SR; mappings inserted $MI, removed $MR"
  echo "pipeline: read $READ = written $WRITTEN + dropped by nat $DROPPED + status $STATUS + pipeline drops $PIPE_DROPS" \
    "($((WRITTEN + DROPPED + STATUS + PIPE_DROPS))); held $HELD, released $RELEASED"
  echo "pool: $POOL_FREE of $POOL_SIZE buffers free at stop; $CLEAN_LINE; natd exit status $NATD_RC"
  echo
} | tee "$RESULTS_DIR/summary.txt"

b() { if "$@"; then echo 1; else echo 0; fi; }
stress_check "RSS flat after warm-up" "$(fj "int(d['rss_growth_mb'] <= d['flat_mb'])")" \
  "max - first after warm-up = $(fj 'd["rss_growth_mb"]') MB <= $FLAT_MB MB"
stress_check "no new memory mapped" "$(fj "int(d['vmsize_growth_mb'] <= d['flat_mb'])")" \
  "VmSize max - first after warm-up = $(fj 'd["vmsize_growth_mb"]') MB <= $FLAT_MB MB"
stress_check "every mapping expired" "$(b [ "$MAPPINGS" = 0 ] && [ "$SESSIONS" = 0 ])" \
  "$MAPPINGS mappings, $SESSIONS sessions left ${EXPIRED_AFTER}s after the traffic stopped"
stress_check "sessions balance" "$(b [ "$SI" = "$SR" ])" "inserted $SI, removed $SR"
stress_check "mappings balance" "$(b [ "$MI" = "$MR" ])" "inserted $MI, removed $MR"
stress_check "buffers all returned" "$(b [ "$POOL_FREE" = "$POOL_SIZE" ] && [ "$POOL_SIZE" -gt 0 ] &&
  grep -q '^natd: stopped cleanly' "$O")" "$POOL_FREE of $POOL_SIZE free; $CLEAN_LINE"
stress_check "pipeline packets balance" "$(b [ "$READ" = $((WRITTEN + DROPPED + STATUS + PIPE_DROPS)) ] && [ "$HELD" = "$RELEASED" ])" \
  "read $READ, written+dropped+status $((WRITTEN + DROPPED + STATUS + PIPE_DROPS)); held $HELD, released $RELEASED"
FLOWS_OK=$((TCP_OK + UDP_OK)) FLOWS=$((TCP_OK + UDP_OK + TCP_FAIL + UDP_FAIL))
stress_check "churn flows completed (>= 99%)" "$(fj "int($FLOWS > 0 and $FLOWS_OK >= 0.99 * $FLOWS and d['long'].get('long_ok', False))")" \
  "$FLOWS_OK of $FLOWS short flows; long flow ok: $(fj 'd["long"].get("long_ok", False)')"
stress_check "natd exit status 0" "$(b [ "$NATD_RC" = 0 ])" "exit status $NATD_RC"
stress_verdicts | tee -a "$RESULTS_DIR/summary.txt"
