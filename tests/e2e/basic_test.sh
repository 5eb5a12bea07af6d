#!/usr/bin/env bash
# basic_test: real clients through natd, IPv4 and IPv6 — ping, a 10 MB HTTP
# download (curl in lan from python3 -m http.server in wan, sha256 compared),
# a UDP echo (socat) — once with one queue and one worker, once with two of
# each (io_uring batches), once with one of each, no offloads, one
# read()/write() per packet and busy polling; natd's status dump must show the mappings the traffic made, and natd
# must stop cleanly with every buffer returned.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
e2e_step "servers in wan: HTTP on :8000 (10 MB random file), UDP echo on :7000"
e2e_http_server 10
e2e_udp_echo_servers

# status_has TABLE REGEX: a session line of that table in the last status dump.
status_has() {
  local table=$1 re=$2
  awk '/^  [a-z0-9]+ /{t=$1} /^    /{print t " " substr($0, 5)}' "$LAB_DIR/status-$E2E_STATUS_N.txt" |
    grep -E "^$table $re" >/dev/null || e2e_fail "status: no $table session matching '$re'"
  e2e_ok "status: $table session $re"
}

# queues, workers, offloads, io_uring batches (else one read()/write() a
# packet), busy polling (µs)
for config in "1 1 true true 0" "2 2 true true 0" "1 1 false false 20000"; do
  read -r queues workers offload uring busy <<<"$config"
  e2e_step "natd with --queues=$queues --workers=$workers --offload=$offload --io_uring=$uring --busy_poll_us=$busy"
  e2e_start_natd --queues="$queues" --workers="$workers" --offload="$offload" --io_uring="$uring" --busy_poll_us="$busy"
  if [ "$offload" = true ]; then want="csum tso4 tso6"; else want="none"; fi
  grep -q "offloads $want" "$LAB_DIR/natd.log" || e2e_fail "natd log: expected 'offloads $want'"
  e2e_ok "TUN offloads: $want"
  if [ "$uring" = true ]; then want="I/O io_uring"; else want="I/O read/write[;,]"; fi
  grep -qE "$want" "$LAB_DIR/natd.log" || e2e_fail "natd log: expected '$want' in: $(grep 'running on' "$LAB_DIR/natd.log")"
  e2e_ok "TUN $want"
  if [ "$busy" != 0 ]; then
    grep -q "busy poll $busy us" "$LAB_DIR/natd.log" || e2e_fail "natd log: expected 'busy poll $busy us'"
    e2e_ok "busy polling $busy µs"
  fi

  for fam in 4 6; do
    if [ $fam = 4 ]; then dst=198.19.0.2; else dst=2001:db8:19::2; fi
    e2e_step "IPv$fam through natd ($queues queue(s), $workers worker(s))"
    e2e_ping_check $fam $dst 3
    e2e_curl_check $fam
    e2e_udp_echo_check $fam
    e2e_udp_echo_check $fam
  done

  e2e_step "status dump shows the mappings"
  e2e_status
  for ((w = 0; w < workers; w++)); do
    grep -q "^shard $w$" "$LAB_DIR/status-$E2E_STATUS_N.txt" || e2e_fail "status: shard $w missing"
  done
  [ "$(grep -c '^shard ' "$LAB_DIR/status-$E2E_STATUS_N.txt")" = "$workers" ] ||
    e2e_fail "status: expected $workers shard sections"
  e2e_ok "status: $workers shard section(s)"
  p='[0-9]+'
  status_has tcp4 "198\.18\.0\.2:$p -> 198\.19\.0\.100:$p <-> 198\.19\.0\.2:8000 "
  status_has udp4 "198\.18\.0\.2:$p -> 198\.19\.0\.100:$p <-> 198\.19\.0\.2:7000 "
  status_has icmp4 "198\.18\.0\.2:$p -> 198\.19\.0\.100:$p <-> 198\.19\.0\.2:0 "
  status_has tcp6 "\[fd00:18::2\]:$p -> \[2001:db8:19::100\]:$p <-> \[2001:db8:19::2\]:8000 "
  status_has udp6 "\[fd00:18::2\]:$p -> \[2001:db8:19::100\]:$p <-> \[2001:db8:19::2\]:7000 "
  status_has icmp6 "\[fd00:18::2\]:$p -> \[2001:db8:19::100\]:$p <-> \[2001:db8:19::2\]:0 "
  # Two UDP echoes per family from two client sockets: two sessions each.
  n=$(grep -cE "^    198\.18\.0\.2:$p -> 198\.19\.0\.100:$p <-> 198\.19\.0\.2:7000 " \
    "$LAB_DIR/status-$E2E_STATUS_N.txt" || true)
  [ "$n" = 2 ] || e2e_fail "status: expected 2 udp4 sessions to :7000, found $n"
  e2e_ok "status: 2 udp4 sessions to :7000"

  e2e_step "stop natd"
  e2e_stop_natd
  for c in pool-empty worker-queue-full writer-queue-full write-failed; do
    v=$(e2e_counter "pipeline.drop.$c")
    [ "$v" = 0 ] || e2e_fail "pipeline.drop.$c is $v, expected 0 under this light load"
  done
  out=$(e2e_counter packets_out)
  in=$(e2e_counter packets_in)
  # 10 MB per family is > 7000 full-size segments each, or (offloads) > 160
  # super-packets of at most 64 KB.
  if [ "$offload" = true ]; then min_in=320 min_out=40; else min_in=14000 min_out=1000; fi
  [ "$in" -gt $min_in ] && [ "$out" -gt $min_out ] || e2e_fail "totals: packets_in $in / packets_out $out too small"
  e2e_ok "totals: packets_out $out, packets_in $in, no pipeline drops"
done

e2e_pass
