#!/usr/bin/env bash
# malformed_test: scapy (malformed.py) sends a few hundred malformed or
# untranslatable packets into the router from the lan side (to the wan host)
# and from the wan side (to natd's global addresses), IPv4 and IPv6:
# unknown protocols, bad UDP lengths, truncated L4 headers, bad TCP
# data offsets, unsupported ICMP types, ICMP errors from inside, IPv6
# extension header chains too long or truncated, ICMP errors with truncated,
# mismatched or unknown quotes, plus cases the router's kernel drops itself
# (bad IPv4 header checksum, IHL, total length) and valid oddities natd must
# translate (IP options, bad L4 checksums).
#  - run 1: natd must stay up, its status dump must count the drops
#    (pipeline.dropped_by_nat), each drop.<reason> counter at exit must equal
#    the number of packets sent for that reason, and a curl download, a ping
#    and a UDP echo must still work afterwards;
#  - run 2 (2 queues, 2 workers): a few hundred fuzzed packets from both sides;
#    natd must stay up, count drops, and still carry traffic.
# Both runs end with a clean stop (no buffer leaked).
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
e2e_http_server 2
e2e_udp_echo_servers
lan_mac=$(ip -n "$RTR" -br link show rtr-lan | awk '{print $3}')
wan_mac=$(ip -n "$RTR" -br link show rtr-wan | awk '{print $3}')

status_counter() { awk -v n="$1" '$1==n {print $2}' "$LAB_DIR/status-$E2E_STATUS_N.txt" | tail -n 1; }
natd_alive() { [ -n "${NATD_PID:-}" ] && kill -0 "$NATD_PID" 2>/dev/null; }
traffic_still_works() {
  e2e_ping_check 4 198.19.0.2 2
  e2e_ping_check 6 2001:db8:19::2 2
  e2e_curl_check 4
  e2e_curl_check 6
  e2e_udp_echo_check 4
  e2e_udp_echo_check 6
}

e2e_step "run 1: structured malformed packets"
e2e_start_natd
e2e_status >/dev/null
dropped0=$(status_counter pipeline.dropped_by_nat)
for side in lan wan; do
  mac=$lan_mac
  [ $side = wan ] && mac=$wan_mac
  ip netns exec "$LAB_PREFIX-$side" "$PY" "$E2E_DIR/malformed.py" structured --side $side --router-mac "$mac" \
    --repeat 6 >"$LAB_DIR/malformed-$side.txt" 2>&1 || {
    cat "$LAB_DIR/malformed-$side.txt"
    e2e_fail "malformed.py failed on the $side side"
  }
  sed 's/^/    /' "$LAB_DIR/malformed-$side.txt"
done
sleep 0.5
natd_alive || e2e_fail "natd died from the malformed packets"
e2e_ok "natd is still running"
# Held fragments (fragment-timeout) are dropped only when they time out or
# natd stops: not yet in the status.
expected_total=$(awk '/^expect / && $2 != "drop.fragment-timeout" {s += $3} END {print s + 0}' \
  "$LAB_DIR"/malformed-{lan,wan}.txt)
e2e_status >/dev/null
grep -E "^pipeline\." "$LAB_DIR/status-$E2E_STATUS_N.txt" | sed 's/^/    /'
dropped1=$(status_counter pipeline.dropped_by_nat)
[ $((dropped1 - dropped0)) -ge "$expected_total" ] ||
  e2e_fail "status: pipeline.dropped_by_nat went from $dropped0 to $dropped1, expected >= $expected_total more"
e2e_ok "status: pipeline.dropped_by_nat $dropped0 -> $dropped1 (>= $expected_total packets natd must drop)"

e2e_step "run 1: normal traffic after the malformed packets"
traffic_still_works
natd_alive || e2e_fail "natd is gone"
e2e_stop_natd

e2e_step "run 1: every drop.<reason> counter equals what was sent for that reason"
awk '/^expect /{n[$2] += $3} END {for (r in n) print r, n[r]}' "$LAB_DIR"/malformed-{lan,wan}.txt | sort >"$LAB_DIR/expected-drops.txt"
while read -r reason want; do
  got=$(e2e_counter "$reason")
  [ "$got" = "$want" ] || e2e_fail "$reason: natd counted $got, $want such packets were sent"
  e2e_ok "$reason $got"
done <"$LAB_DIR/expected-drops.txt"
# 14 distinct reasons (outbound ICMP errors are translated now, not a reason of their own).
[ "$(wc -l <"$LAB_DIR/expected-drops.txt")" -ge 14 ] || e2e_fail "too few drop reasons exercised"
grep -q "packet-drop lines suppressed by the rate limit\|^.* drop " "$LAB_DIR/natd.log" ||
  e2e_fail "natd logged none of the dropped packets"
e2e_ok "natd logged the drops (rate-limited): $(grep -c ' drop ' "$LAB_DIR/natd.log") lines"

e2e_step "run 2: fuzzed packets, natd with --queues=2 --workers=2"
e2e_start_natd --queues=2 --workers=2
e2e_status >/dev/null
dropped0=$(status_counter pipeline.dropped_by_nat)
for side in lan wan; do
  mac=$lan_mac
  [ $side = wan ] && mac=$wan_mac
  ip netns exec "$LAB_PREFIX-$side" "$PY" "$E2E_DIR/malformed.py" fuzz --side $side --router-mac "$mac" \
    --count 210 --seed "$([ $side = lan ] && echo 4787 || echo 4788)" 2>&1 | sed 's/^/    /'
done
sleep 0.5
natd_alive || e2e_fail "natd died from the fuzzed packets"
e2e_ok "natd is still running"
e2e_status >/dev/null
dropped1=$(status_counter pipeline.dropped_by_nat)
[ "$dropped1" -gt "$dropped0" ] || e2e_fail "status: no drops counted for the fuzzed packets"
e2e_ok "status: pipeline.dropped_by_nat $dropped0 -> $dropped1"
traffic_still_works
e2e_stop_natd
grep -E "^drop\." "$LAB_DIR/natd.out" | sed 's/^/    /'
e2e_pass
