#!/usr/bin/env bash
# The lab benchmark: natd beside the kernel's own NAT (nft masquerade), in the
# same run on the same namespace lab (../shared/NETLAB.md).
#
# For each system: iperf3 TCP with 1 and with 4 streams, small-packet UDP
# (64-byte datagrams) twice: from several iperf3 senders at once (sockets,
# each sender waits for its own sends; one sender cannot saturate the
# kernel's path), and from trafgen (netsniff-ng: packets built once, sent
# from a mmap'ed ring on one CPU, ~270 k/s here, more than the kernel's NAT
# forwards), counted where they arrive by an nft counter on the wan host;
# and ping RTT; for natd also its CPU time.
# natd runs with 1 and 2 queues/workers, offloads on and off, once with one
# system call per packet instead of io_uring's batches, and once busy
# polling. Bounded: about 30 s per system (DURATION=4).
#
# Usage: bench/lab.sh NATD_BINARY [RESULTS_DIR]   (bazel run //bench:lab)
# Writes RESULTS_DIR/{table.md,results.json,machine.txt,ratios.png}.
set -uo pipefail
export NATD_BIN=$(readlink -f "$1")
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
# Under `bazel run`, results go to the workspace's bench/results/.
results_root=${BUILD_WORKSPACE_DIRECTORY:-$here/..}/bench/results
out=${2:-$results_root/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
lab=$here/../tests/lab/lab.sh
[ -f "$lab" ] || lab=$(dirname "$0")/../tests/lab/lab.sh
source "$lab"

DURATION=${DURATION:-4}
UDP_SENDERS=${UDP_SENDERS:-3}
RESULTS=$out/raw.jsonl
: >"$RESULTS"

lab_up
# The wan host counts (and drops, so no port-unreachable answers flow back)
# trafgen's datagrams to its discard port.
wan nft -f - <<'NFT'
table inet bench_count {
  counter trafgen_in {}
  chain input { type filter hook input priority 0; udp dport 9 counter name trafgen_in drop; }
}
NFT
# iperf3 servers: one for TCP, one per UDP sender.
wan iperf3 -s -D -p 5201 >/dev/null 2>&1
for i in $(seq "$UDP_SENDERS"); do wan iperf3 -s -D -p $((5210 + i)) >/dev/null 2>&1; done
sleep 0.5

kernel_nat_on() {
  # The kernel's NAT instead of natd: no policy routing into the TUN;
  # masquerade out of rtr-wan; invalid packets dropped (or they leak).
  ip -n "$RTR" rule del iif rtr-lan lookup 100
  ip -n "$RTR" -6 rule del iif rtr-lan lookup 100
  rtr nft -f - <<'NFT'
table inet bench_nat {
  chain forward { type filter hook forward priority 0; ct state invalid drop; }
  chain postrouting { type nat hook postrouting priority 100; oifname "rtr-wan" masquerade; }
}
NFT
}

kernel_nat_off() {
  rtr nft delete table inet bench_nat
  ip -n "$RTR" rule add iif rtr-lan lookup 100
  ip -n "$RTR" -6 rule add iif rtr-lan lookup 100
}

natd_cpu_ticks() { awk '{print $14 + $15}' "/proc/$NATD_PID/stat" 2>/dev/null || echo 0; }

tcp_gbps() {  # streams
  lan iperf3 -c 198.19.0.2 -p 5201 -t "$DURATION" -P "$1" -J 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys
try: print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9, 3))
except Exception: print(0)'
}

udp_kpps() {
  local i pids=()
  for i in $(seq "$UDP_SENDERS"); do
    lan iperf3 -c 198.19.0.2 -p $((5210 + i)) -u -b 0 -l 64 -t "$DURATION" -J >"$out/udp$i.json" 2>/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
  /usr/bin/python3 - "$out" "$UDP_SENDERS" <<'PY'
import json, sys
total = 0.0
for i in range(1, int(sys.argv[2]) + 1):
    try:
        d = json.load(open(f"{sys.argv[1]}/udp{i}.json"))
        s = d["end"]["sum"]
        total += (s["packets"] - s["lost_packets"]) / s["seconds"]
    except Exception:
        pass
print(round(total / 1000, 1))
PY
}

# trafgen's packets: lan0 -> the router's MAC, 198.18.0.2 -> 198.19.0.2
# port 9, 64 bytes of payload (as iperf3's -l 64), from 64 source ports in
# turn (64 flows, as a NAT sees from one busy host); trafgen fills in the
# lengths and checksums, and redoes the UDP checksum as the port changes.
TRAFGEN_CFG=$out/trafgen.cfg
echo "{ eth(da=$(rtr cat /sys/class/net/rtr-lan/address), sa=$(lan cat /sys/class/net/lan0/address))," \
  "ipv4(saddr=198.18.0.2, daddr=198.19.0.2, ttl=64), udp(sp=dinc(20000, 20063), dp=9), fill(0x00, 64) }" >"$TRAFGEN_CFG"

trafgen_count() {
  wan nft -j list counter inet bench_count trafgen_in | /usr/bin/python3 -c 'import json,sys
print(next(x["counter"]["packets"] for x in json.load(sys.stdin)["nftables"] if "counter" in x))'
}

# Received rate over DURATION seconds, one second after trafgen (one CPU,
# full speed) started: its ring set-up and natd's first mappings left out.
trafgen_kpps() {
  command -v trafgen >/dev/null || { echo 0; return; }
  lan timeout -s INT $((DURATION + 2)) trafgen --dev lan0 --conf "$TRAFGEN_CFG" --cpus 1 >"$out/trafgen.log" 2>&1 &
  local pid=$! c0 c1 t0 t1
  sleep 1
  c0=$(trafgen_count) t0=$(date +%s.%N)
  sleep "$DURATION"
  c1=$(trafgen_count) t1=$(date +%s.%N)
  wait "$pid"
  /usr/bin/python3 -c "print(round(($c1 - $c0) / ($t1 - $t0) / 1000, 1))"
}

ping_us() {
  lan ping -c 200 -i 0.005 -q 198.19.0.2 2>/dev/null |
    awk -F'/' '/rtt/ {printf "%.0f\n", $5 * 1000}'
}

measure() {  # name
  local name=$1 t0 t1 w0 w1 tcp1 tcp4 udp tg rtt cpu=null
  t0=$(natd_cpu_ticks) w0=$(date +%s.%N)
  tcp1=$(tcp_gbps 1)
  tcp4=$(tcp_gbps 4)
  udp=$(udp_kpps)
  tg=$(trafgen_kpps)
  t1=$(natd_cpu_ticks) w1=$(date +%s.%N)
  rtt=$(ping_us)
  if [ -n "$NATD_PID" ]; then
    cpu=$(/usr/bin/python3 -c "print(round(($t1 - $t0) / $(getconf CLK_TCK) / ($w1 - $w0) * 100))")
  fi
  echo "{\"system\": \"$name\", \"tcp1_gbps\": ${tcp1:-0}, \"tcp4_gbps\": ${tcp4:-0}, \"udp_kpps\": ${udp:-0}, \"trafgen_kpps\": ${tg:-0}, \"ping_us\": ${rtt:-0}, \"natd_cpu_pct\": $cpu}" |
    tee -a "$RESULTS"
}

echo "== kernel nft masquerade" >&2
kernel_nat_on
measure "kernel nft masquerade"
kernel_nat_off

# Each: queues/workers, offloads, io_uring, busy polling (µs, optional).
# The fifth row shows what io_uring's batching is worth (the first, with one
# system call per packet); the last, what busy polling is worth for latency
# (a thread that does not sleep between pings is not woken for each).
# NATD_CONFIGS="1 true true;2 true true" picks some.
IFS=';' read -ra configs <<<"${NATD_CONFIGS:-1 true true;2 true true;1 false true;2 false true;1 true false;1 true true 10000}"
for cfg in "${configs[@]}"; do
  set -- $cfg
  busy=${4:-0}
  name="natd q$1/w$1 offload $([ "$2" = true ] && echo on || echo off)$([ "$3" = false ] && echo ", read/write")"
  [ "$busy" != 0 ] && name+=", busy poll $((busy / 1000)) ms"
  echo "== $name" >&2
  lab_start_natd --queues="$1" --workers="$1" --offload="$2" --io_uring="$3" --busy_poll_us="$busy" \
    --preset=port-restricted-cone || continue
  measure "$name"
  lab_stop_natd || echo "natd did not stop cleanly" >&2
done

{
  echo "kernel: $(uname -r)"
  echo "cpus: $(nproc)"
  grep -m1 "model name" /proc/cpuinfo
  free -h | sed -n 2p
  # How an idle CPU waits: on a VM, waking one that halted (cpuidle without
  # polling) costs tens of µs, which a ping through natd pays (README).
  echo "cpuidle: $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none)$(
    [ -r /sys/module/haltpoll/parameters/guest_halt_poll_ns ] &&
      echo ", guest_halt_poll_ns=$(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns)")"
  echo "natd: $NATD_BIN"
  echo "date: $(date -u +%FT%TZ)"
  echo "duration per test: ${DURATION}s, UDP senders: $UDP_SENDERS iperf3, and trafgen on one CPU"
} >"$out/machine.txt"

/usr/bin/python3 "$here/lab_report.py" "$RESULTS" "$out"
