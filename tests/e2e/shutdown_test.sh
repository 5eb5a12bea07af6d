#!/usr/bin/env bash
# shutdown_test: SIGTERM while natd is under load. iperf3 TCP (2 streams) and
# an iperf3 UDP flood (-b 200M), both bounded to 5 s, run through natd; after
# 2 s natd gets SIGTERM and must exit 0 within 3 s, printing its totals and
# "stopped cleanly, all N buffers returned". Twice: 1 queue / 1 worker (TCP
# over IPv4, UDP over IPv6), then 2 queues / 2 workers (TCP over IPv6, UDP
# over IPv4).
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
now_ms() { echo $(($(date +%s%N) / 1000000)); }

run=0
for config in "1 1 4" "2 2 6"; do
  read -r queues workers tcp_fam _ <<<"$config"
  run=$((run + 1))
  tcp_port=$((5200 + 2 * run - 1))
  udp_port=$((5200 + 2 * run))
  if [ "$tcp_fam" = 4 ]; then tcp_dst=198.19.0.2; udp_dst=2001:db8:19::2; else tcp_dst=2001:db8:19::2; udp_dst=198.19.0.2; fi

  e2e_step "run $run: natd --queues=$queues --workers=$workers; iperf3 TCP to $tcp_dst, UDP flood to $udp_dst"
  e2e_bg "$WAN" "iperf3-server-$tcp_port" iperf3 -s -p $tcp_port
  e2e_bg "$WAN" "iperf3-server-$udp_port" iperf3 -s -p $udp_port
  e2e_wait_listen "$WAN" tcp $tcp_port
  e2e_wait_listen "$WAN" tcp $udp_port
  e2e_start_natd --queues="$queues" --workers="$workers"

  e2e_bg "$LAN" "iperf3-tcp-$run" timeout 20 iperf3 -c $tcp_dst -p $tcp_port -P 2 -t 5 -i 1 --forceflush --connect-timeout 3000
  tcp_pid=$E2E_BG_PID
  e2e_bg "$LAN" "iperf3-udp-$run" timeout 20 iperf3 -c $udp_dst -p $udp_port -u -b 200M -l 1200 -t 5 -i 1 --forceflush --connect-timeout 3000
  udp_pid=$E2E_BG_PID
  sleep 2

  # Both flows must be running when natd is told to stop.
  for f in "iperf3-tcp-$run" "iperf3-udp-$run"; do
    grep -qE "^\[ *[0-9]+\] +0\.00-[0-9]+\.[0-9]+ +sec +[0-9.]+ [KMG]Bytes" "$LAB_DIR/$f.log" || {
      cat "$LAB_DIR/$f.log"
      e2e_fail "$f: no traffic in its first second"
    }
  done
  before=$(grep -c "^natd status" "$LAB_DIR/natd.out" || true)
  kill -USR1 "$NATD_PID"
  for i in $(seq 40); do
    [ "$(grep -c "^natd status" "$LAB_DIR/natd.out" || true)" -gt "$before" ] && break
    sleep 0.05
  done
  read_now=$(awk '$1=="pipeline.read" {v=$2} END {print v+0}' "$LAB_DIR/natd.out")
  [ "$read_now" -gt 20000 ] || e2e_fail "natd has read only $read_now packets after 2 s of load"
  e2e_ok "both flows running; natd has read $read_now packets (status via SIGUSR1)"
  kill -0 "$tcp_pid" 2>/dev/null && kill -0 "$udp_pid" 2>/dev/null || e2e_fail "an iperf3 client ended early"

  e2e_step "run $run: SIGTERM to natd under load"
  t0=$(now_ms)
  LAB_STOP_TIMEOUT=10 e2e_stop_natd
  took=$(($(now_ms) - t0))
  [ "$took" -le 3000 ] || e2e_fail "natd took ${took} ms to exit after SIGTERM (limit 3000 ms)"
  e2e_ok "natd exited ${took} ms after SIGTERM, status 0"
  grep -E "^(packets_(in|out)|pipeline\.(read|written|drop\.[a-z-]+)|pipeline\.pool_free) " "$LAB_DIR/natd.out" |
    tail -n 9 | sed 's/^/    /'
  [ "$(e2e_counter pipeline.read)" -gt "$read_now" ] || e2e_fail "totals: pipeline.read did not grow"

  # The clients lose their path with natd; they are not what is tested here.
  kill "$tcp_pid" "$udp_pid" 2>/dev/null || true
  wait "$tcp_pid" "$udp_pid" 2>/dev/null || true
done

e2e_pass
