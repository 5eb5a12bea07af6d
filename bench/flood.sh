#!/usr/bin/env bash
# natd under attack, in the namespace lab (../shared/NETLAB.md): while an
# established iperf3 TCP flow lan -> wan runs through natd,
#   (a) an unsolicited flood from the wan side at the global addresses
#       (UDP and TCP SYN, IPv4 and IPv6, random sources, random ports), then
#   (b) a SYN flood from inside (198.18.0.3, random source ports, to a wan
#       host that never answers, so every SYN asks for a new session and
#       each session lives its whole transitory timeout).
# Before them a control phase runs flood (a)'s generator with its packets
# dropped before they leave wan: what the generator alone costs the flow
# on a machine whose cores it shares.
# It measures the flow's throughput in each phase against the flow with no
# flood (an 8 s baseline first, then 8 s of quiet after each phase; each
# flood is judged against the quiet windows either side of it), natd's
# memory (VmRSS/VmHWM) before, during and after, natd's counters, and
# counts with tcpdump on lan0 the flood packets let in to the lan.
#
# Usage: bash bench/flood.sh [--duration S] [--wan-rate PPS] [--syn-rate PPS]
#                            [--flow-rate BW] [--rss-bound-mb MB] [natd flags...]
#   --duration S      length of each flood (default 30)
#   --wan-rate PPS    packets/s of flood (a) (default 20000)
#   --syn-rate PPS    SYNs/s of flood (b) (default 20000)
#   --flow-rate BW    iperf3 -b of the measured flow (default 1G; 0: as fast as it goes).
#                     A flow at a set rate below natd's capacity shows whether the floods take
#                     from natd what the flow needs; an unlimited one on a machine of two shared
#                     cores mostly shows how the cores are split (generator, iperf3, natd, neighbours).
#   --rss-bound-mb MB natd's VmHWM may exceed its RSS before the floods by this much (default 32)
#   anything else is passed to natd (default --max_sessions=65536; later flags win)
# NATD_BIN=path skips the build; NATD_BAZEL_OUTPUT_BASE picks Bazel's output base.
# Bounded: about 3 x duration + 60 s. Needs root. Prints a table and one
# PASS/FAIL per criterion; exits 1 if any fails. Results in
# bench/results/<time>-flood/ (summary.txt, figures.json, logs).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=stress_lib.sh
source "$here/stress_lib.sh"

DURATION=30 WAN_RATE=20000 SYN_RATE=20000 FLOW_RATE=1G RSS_BOUND_MB=32
NATD_FLAGS=(--max_sessions=65536)
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --wan-rate) WAN_RATE=$2; shift 2 ;;
    --syn-rate) SYN_RATE=$2; shift 2 ;;
    --flow-rate) FLOW_RATE=$2; shift 2 ;;
    --rss-bound-mb) RSS_BOUND_MB=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) NATD_FLAGS+=("$1"); shift ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 2; }

SETTLE=2     # s for the flow's TCP ramp before the baseline
BASELINE=8   # s of baseline
GAP=8        # s of quiet after each flood
SKIP=1       # s at the start of each flood, and after it, not counted (ramps)
FLOW_TIME=$((SETTLE + BASELINE + 3 * DURATION + 3 * GAP + 20))  # + markers, pool builds, slack

stress_lab_up flood

echo "natd: $NATD_BIN ${NATD_FLAGS[*]}"
echo "results: $RESULTS_DIR"
# Resolve neighbours first (nothing here crosses natd).
lan ping -c1 -W2 198.18.0.1 >/dev/null
wan ping -c1 -W2 198.19.0.1 >/dev/null
wan ping -6 -c1 -W2 2001:db8:19::1 >/dev/null
lab_start_natd "${NATD_FLAGS[@]}"
NATD=$NATD_PID

# The SYN flood's target never answers (as a spoofed or dead target does):
# no RST closes the sessions, so each one lives its transitory timeout, the
# worst case for natd's table.
wan nft -f - <<'NFT'
table inet flood_sink {
  chain input { type filter hook input priority 0; ip saddr 198.19.0.100 tcp dport { 9, 13, 17, 19 } drop; }
}
NFT

# The measured flow: iperf3 TCP lan -> wan, its per-second throughput read
# on the receiving side, its retransmissions (lost segments) on the sending
# side; each line stamped with the epoch second it ends.
wan iperf3 -s -1 -p 5201 -i 1 -f m --forceflush --timestamps='%s ' >"$RESULTS_DIR/iperf-server.log" 2>&1 &
for _ in $(seq 50); do [ -n "$(wan ss -Hltn 'sport = :5201')" ] && break; sleep 0.1; done
# Not through lan(): $! must be iperf3 itself, to stop it when done.
ip netns exec "$LAN" iperf3 -c 198.19.0.2 -p 5201 -t "$FLOW_TIME" -b "$FLOW_RATE" -i 1 -f m --forceflush \
  --timestamps='%s ' >"$RESULTS_DIR/iperf-client.log" 2>&1 &
FLOW=$!
stress_sample_mem "$RESULTS_DIR/mem.txt" 0.5

sleep "$SETTLE"
# Flood (a) is unsolicited: it avoids the external ports of the mappings
# that exist (the flow's), since under endpoint-independent filtering
# (--preset=full-cone) anything sent to those is let in by design.
AVOID=$(lab_status | grep -oE -- '-> (198\.19\.0\.100|\[2001:db8:19::100\]):[0-9]+' | sed 's/.*://' | sort -u | paste -sd, -)

# "Let in": a flood packet (a source from the flood's ranges) arriving at lan.
# Not through lan(): $! must be tcpdump itself, and SIGTERM (a background
# job ignores SIGINT) makes it flush and exit. --immediate-mode: a packet
# waits in no ring buffer block, so none is lost when tcpdump stops.
ip netns exec "$LAN" tcpdump -i lan0 -nn -Q in -U --immediate-mode -w "$LAB_DIR/letin.pcap" \
  '(ip and (src net 100.64.0.0/10 or src host 203.0.113.1)) or (ip6 and src net 2001:db8:ff00::/40)' \
  2>"$LAB_DIR/tcpdump.err" &
TCPDUMP=$!
for _ in $(seq 50); do grep -q listening "$LAB_DIR/tcpdump.err" && break; sleep 0.1; done
# The capture is shown to work: a marker datagram (from 203.0.113.1, a
# source the floods never use) routed by the router's kernel straight to
# the lan, before the floods and after them; the capture must see both.
send_marker() {
  ip -n "$WAN" route add 198.18.0.2/32 via 198.19.0.1
  wan "$PY" "$here/flood_send.py" marker
  ip -n "$WAN" route del 198.18.0.2/32 via 198.19.0.1
}
send_marker
sleep 1

# The flow with no flood is measured in quiet windows: the baseline first,
# then the GAP seconds after each phase (from SKIP s after it ends to the
# next one's start, so the generator's packet building is outside too).
# The cores are shared, with each other and with whatever else runs on the
# machine, so a flood is compared with the quiet windows either side of it:
# a drift in the machine's load over minutes cancels out.
Q0=$(date +%s.%N)
sleep "$BASELINE"
read -r RSS_BEFORE HWM_BEFORE _ < <(stress_mem_kb "$NATD")

# run_phase NAME NS ARGS...: one flood (or the control), then GAP s of quiet.
declare -A LAUNCH
run_phase() {
  local name=$1 ns=$2
  shift 2
  LAUNCH[$name]=$(date +%s.%N)
  ip netns exec "$ns" "$PY" "$here/flood_send.py" "$@" >"$RESULTS_DIR/flood-$name.json"
  cat "$RESULTS_DIR/flood-$name.json"
  sleep "$GAP"
}

# Control: the generator alone, its packets dropped in wan's own output
# hook, never reaching natd. On two cores the generator takes CPU from the
# flow too; this phase shows how much of a drop in (a) is the generator's.
echo "control: flood (a)'s generator alone (dropped in wan), $WAN_RATE pps asked, ${DURATION}s"
wan nft -f - <<'NFT'
table inet flood_control {
  chain output { type filter hook output priority 0; ip saddr 100.64.0.0/10 drop; ip6 saddr 2001:db8:ff00::/40 drop; }
}
NFT
run_phase control "$WAN" wan --rate "$WAN_RATE" --duration "$DURATION"
wan nft delete table inet flood_control
echo "flood (a): wan -> global addresses, $WAN_RATE pps asked, ${DURATION}s (avoiding ports ${AVOID:-none})"
run_phase wan "$WAN" wan --rate "$WAN_RATE" --duration "$DURATION" --avoid-ports "$AVOID"
echo "flood (b): SYN flood from 198.18.0.3, $SYN_RATE pps asked, ${DURATION}s"
run_phase syn "$LAN" syn --rate "$SYN_RATE" --duration "$DURATION"
Q_END=$(date +%s.%N)

send_marker
sleep 1
kill -TERM "$TCPDUMP" 2>/dev/null || true
wait "$TCPDUMP" 2>/dev/null || true
LET_IN=$(tcpdump -r "$LAB_DIR/letin.pcap" -nn 'not src host 203.0.113.1' 2>/dev/null | wc -l)
MARKERS=$(tcpdump -r "$LAB_DIR/letin.pcap" -nn 'src host 203.0.113.1' 2>/dev/null | wc -l)
ALIVE=0
kill -0 "$NATD" 2>/dev/null && ALIVE=1
# Memory after the floods is read before the status dump: a dump of a full
# table is a large string of its own (see HWM_STATUS).
read -r RSS_AFTER HWM_AFTER _ < <(stress_mem_kb "$NATD")
stress_status_summary >"$RESULTS_DIR/status-after.txt" || true
read -r MAPPINGS SESSIONS < <(stress_table_totals "$RESULTS_DIR/status-after.txt")
read -r RSS_STATUS HWM_STATUS _ < <(stress_mem_kb "$NATD")
kill -TERM "$FLOW" 2>/dev/null || true  # the flow ran long enough (iperf3 ends both sides on SIGTERM)
wait "$FLOW" 2>/dev/null || true
NATD_RC=0
lab_stop_natd || NATD_RC=$?
CLEAN=$(grep -cE '^natd: stopped cleanly, all [0-9]+ buffers returned$' "$LAB_DIR/natd.out" || true)
T="natd totals"
O=$LAB_DIR/natd.out

# The figures, from the logs, as JSON (figures.json) and a table.
"$PY" - "$RESULTS_DIR" <<PY
import json, sys
out = sys.argv[1]
floods = {n: json.load(open(f"{out}/flood-{n}.json")) for n in ("control", "wan", "syn")}
launch = {"control": ${LAUNCH[control]}, "wan": ${LAUNCH[wan]}, "syn": ${LAUNCH[syn]}}
# Windows: the quiet ones and the floods (a flood's first SKIP s not counted).
win = {
    "quiet0": ($Q0, launch["control"]),
    "control": (floods["control"]["start"] + $SKIP, floods["control"]["end"]),
    "quiet1": (floods["control"]["end"] + $SKIP, launch["wan"]),
    "wan": (floods["wan"]["start"] + $SKIP, floods["wan"]["end"]),
    "quiet2": (floods["wan"]["end"] + $SKIP, launch["syn"]),
    "syn": (floods["syn"]["start"] + $SKIP, floods["syn"]["end"]),
    "quiet3": (floods["syn"]["end"] + $SKIP, $Q_END),
}
around = {"control": ("quiet0", "quiet1"), "wan": ("quiet1", "quiet2"), "syn": ("quiet2", "quiet3")}
# Server lines: "EPOCH [  5]   3.00-4.00   sec   440 MBytes  3690 Mbits/sec",
# EPOCH the second the interval ends.
rates = []
for line in open(f"{out}/iperf-server.log"):
    p = line.split()
    if len(p) >= 9 and p[-1] == "Mbits/sec" and p[1] == "[" and "-" in p[3] and p[0].isdigit():
        rates.append((float(p[0]), float(p[-2])))
# Client lines: "EPOCH [  5]   3.00-4.00   sec   119 MBytes  1000 Mbits/sec  RETR  402 KBytes"
retrs = []
for line in open(f"{out}/iperf-client.log"):
    p = line.split()
    if len(p) >= 12 and p[8] == "Mbits/sec" and p[1] == "[" and p[0].isdigit() and p[9].isdigit():
        retrs.append((float(p[0]), int(p[9])))
def intervals(*names, series=None):  # the 1 s intervals inside these windows (half a second of slack)
    return [r for t, r in (series or rates) for n in names if t - 1 >= win[n][0] - 0.5 and t <= win[n][1] + 0.5]
def mean(v):
    return round(sum(v) / len(v), 1) if v else 0.0
mem = [tuple(map(float, l.split()[:3])) for l in open(f"{out}/mem.txt") if len(l.split()) >= 3]
def mem_max(a, b):
    v = [r for t, r, h in mem if a <= t <= b]
    return round(max(v) / 1024, 1) if v else 0.0
base = mean(intervals("quiet0"))
fig = {"flow_mbps": {}, "intervals": {}, "ratio_to_baseline": {}, "ratio_to_quiet_around": {},
       "retransmits": {}, "rss_max_mb": {}, "flood": floods}
for k, (a, b) in win.items():
    v = intervals(k)
    fig["flow_mbps"][k] = mean(v)
    fig["intervals"][k] = len(v)
    fig["ratio_to_baseline"][k] = round(mean(v) / base, 3) if base else 0.0
    fig["rss_max_mb"][k] = mem_max(a, b)
    fig["retransmits"][k] = sum(intervals(k, series=retrs))
for k, (q1, q2) in around.items():
    ref = mean(intervals(q1, q2))
    fig["flow_mbps"][k + "_quiet_around"] = ref
    fig["ratio_to_quiet_around"][k] = round(fig["flow_mbps"][k] / ref, 3) if ref else 0.0
# How much the flow moves from second to second with no flood at all: the
# noise the ratios are read against.
q = intervals("quiet0", "quiet1", "quiet2", "quiet3") or [0]
fig["quiet_min_mbps"], fig["quiet_max_mbps"] = min(q), max(q)
fig.update({
    "rss_before_mb": round($RSS_BEFORE / 1024, 1), "hwm_before_mb": round($HWM_BEFORE / 1024, 1),
    "rss_after_mb": round($RSS_AFTER / 1024, 1), "hwm_after_mb": round($HWM_AFTER / 1024, 1),
    "rss_after_status_mb": round($RSS_STATUS / 1024, 1), "hwm_after_status_mb": round($HWM_STATUS / 1024, 1),
    "hwm_growth_mb": round(($HWM_AFTER - $RSS_BEFORE) / 1024, 1), "rss_bound_mb": $RSS_BOUND_MB,
    "let_in": $LET_IN, "markers_seen": $MARKERS, "natd_alive": $ALIVE, "natd_rc": $NATD_RC, "clean_stop": $CLEAN,
    "mappings_after": $MAPPINGS, "sessions_after": $SESSIONS,
    "counters": {n: int(v) for n, v in [l.split()[:2] for l in open("$O").read().split("natd totals\n")[-1].splitlines()
                                          if len(l.split()) == 2 and l.split()[1].isdigit()]},
    "natd_flags": "${NATD_FLAGS[*]}", "flow_rate": "$FLOW_RATE", "duration": $DURATION,
})
json.dump(fig, open(f"{out}/figures.json", "w"), indent=1)
PY

fj() { "$PY" -c "import json,sys; d=json.load(open('$RESULTS_DIR/figures.json')); print(eval(sys.argv[1]))" "$1"; }
{
  echo
  echo "natd flood test, $(date -u +%FT%TZ), $(nproc) CPUs, natd ${NATD_FLAGS[*]}"
  echo "flow: iperf3 TCP lan -> wan, -b $FLOW_RATE (0: unlimited); floods ${DURATION}s each"
  echo
  printf '| %-30s | %11s | %11s | %15s | %11s | %10s |\n' phase "flow Mbit/s" "vs baseline" "vs quiet around" "retransmits" "max RSS MB"
  printf '| %-30s | %11s | %11s | %15s | %11s | %10s |\n' ------------------------------ ----------- ----------- --------------- ----------- ----------
  for p in quiet0 control quiet1 wan quiet2 syn quiet3; do
    around=-
    case $p in
      quiet0) label="baseline (quiet, ${BASELINE}s)" ;;
      quiet*) label="quiet (${GAP}s)" ;;
      control) label="generator alone $(fj 'd["flood"]["control"]["tried_pps"]') pps" ;;
      wan) label="(a) wan flood $(fj 'd["flood"]["wan"]["pps"]') pps" ;;
      syn) label="(b) inside SYN flood $(fj 'd["flood"]["syn"]["pps"]') pps" ;;
    esac
    case $p in quiet*) ;; *) around=$(fj "d['ratio_to_quiet_around']['$p']") ;; esac
    printf '| %-30s | %11s | %11s | %15s | %11s | %10s |\n' "$label" "$(fj "d['flow_mbps']['$p']")" \
      "$(fj "d['ratio_to_baseline']['$p']")" "$around" "$(fj "d['retransmits']['$p']")" "$(fj "d['rss_max_mb']['$p']")"
  done
  echo "quiet windows per second: $(fj 'd["quiet_min_mbps"]') to $(fj 'd["quiet_max_mbps"]') Mbit/s (the noise the ratios are read against)"
  echo
  echo "natd memory: RSS before the floods $(fj 'd["rss_before_mb"]') MB, after $(fj 'd["rss_after_mb"]') MB;" \
    "VmHWM $(fj 'd["hwm_after_mb"]') MB (+$(fj 'd["hwm_growth_mb"]') MB over RSS before)"
  echo "  then a status dump of the full table: RSS $(fj 'd["rss_after_status_mb"]') MB, VmHWM $(fj 'd["hwm_after_status_mb"]') MB"
  echo "natd tables after the floods: $MAPPINGS mappings, $SESSIONS sessions"
  echo "natd counters at exit: sessions_inserted $(stress_counter "$O" "$T" sessions_inserted)," \
    "drop.inbound-no-mapping $(stress_counter "$O" "$T" drop.inbound-no-mapping)," \
    "drop.inbound-filtered $(stress_counter "$O" "$T" drop.inbound-filtered)," \
    "drop.tcp-no-session $(stress_counter "$O" "$T" drop.tcp-no-session)," \
    "drop.table-full $(stress_counter "$O" "$T" drop.table-full)," \
    "drop.host-quota $(stress_counter "$O" "$T" drop.host-quota)," \
    "icmp_prohibited_sent $(stress_counter "$O" "$T" icmp_prohibited_sent)," \
    "pipeline.drop.pool-empty $(stress_counter "$O" "$T" pipeline.drop.pool-empty)," \
    "pipeline.drop.worker-queue-full $(stress_counter "$O" "$T" pipeline.drop.worker-queue-full)"
  echo "flood packets seen arriving on lan0: $LET_IN (capture check: $MARKERS of 2 marker packets seen)"
  echo
} | tee "$RESULTS_DIR/summary.txt"

ratio_ok() { "$PY" -c "import sys; sys.exit(0 if $1 >= 0.9 else 1)" && echo 1 || echo 0; }
for p in wan syn; do
  stress_check "flow >= 90% during $([ $p = wan ] && echo "wan flood" || echo "SYN flood")" \
    "$(ratio_ok "$(fj "d['ratio_to_quiet_around']['$p']")")" \
    "$(fj "d['flow_mbps']['$p']") of $(fj "d['flow_mbps']['${p}_quiet_around']") Mbit/s in the quiet windows around it"
done
stress_check "memory bounded" "$(fj "int(d['hwm_growth_mb'] <= d['rss_bound_mb'])")" \
  "VmHWM - RSS before = $(fj 'd["hwm_growth_mb"]') MB <= $RSS_BOUND_MB MB"
stress_check "natd alive, stopped cleanly" "$([ "$ALIVE" = 1 ] && [ "$NATD_RC" = 0 ] && [ "$CLEAN" = 1 ] && echo 1 || echo 0)" \
  "alive after the floods: $ALIVE, exit status $NATD_RC, clean-stop line: $CLEAN"
stress_check "nothing let in" "$([ "$LET_IN" = 0 ] && [ "$MARKERS" = 2 ] && echo 1 || echo 0)" \
  "$LET_IN flood packets on lan0 (the capture saw $MARKERS of 2 markers)"
stress_verdicts | tee -a "$RESULTS_DIR/summary.txt"
