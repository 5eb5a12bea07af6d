#!/usr/bin/env bash
# pcp_test: port mapping by the inside host itself (RFC 6886 NAT-PMP with
# Debian's natpmpc, a client no one here wrote; RFC 6887 PCP over IPv6 with
# pcp_client.py). natd runs port-restricted-cone, so without a mapping the
# wan host cannot reach the lan servers; with one it can, until the mapping
# is deleted or its lifetime ends.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
# lan servers: TCP on 198.18.0.2:8080 and [fd00:18::2]:8080, UDP echo on :5300.
e2e_bg "$LAN" tcp4 socat TCP4-LISTEN:8080,bind=198.18.0.2,reuseaddr,fork SYSTEM:'echo hello-from-lan'
e2e_bg "$LAN" tcp6 socat "TCP6-LISTEN:8080,bind=[fd00:18::2],reuseaddr,fork" SYSTEM:'echo hello-from-lan6'
e2e_bg "$LAN" udp4 socat -T 5 UDP4-LISTEN:5300,bind=198.18.0.2,reuseaddr,fork PIPE
e2e_wait_listen "$LAN" tcp 8080
e2e_start_natd --preset=port-restricted-cone --workers=2 --pcp=198.18.0.1,fd00:18::1

# wan_tcp HOST PORT: what the lan server says through natd ('' if nothing).
wan_tcp() { wan timeout 3 socat -T 2 - "TCP:$1:$2,connect-timeout=2" </dev/null 2>/dev/null || true; }

e2e_step "no mapping: the wan host cannot reach the lan's TCP server"
[ -z "$(wan_tcp 198.19.0.100 8080)" ] || e2e_fail "port-restricted-cone let an unsolicited connection in"
e2e_ok "filtered"

e2e_step "NAT-PMP (natpmpc): the external address"
out=$(lan natpmpc -g 198.18.0.1 2>&1) || { echo "$out"; e2e_fail "natpmpc failed"; }
grep -q "Public IP address : 198.19.0.100" <<<"$out" || { echo "$out"; e2e_fail "natpmpc did not learn the global address"; }
e2e_ok "natpmpc: Public IP address : 198.19.0.100"

e2e_step "NAT-PMP: map TCP 8080 and UDP 5300; the wan host reaches both"
out=$(lan natpmpc -g 198.18.0.1 -a 8080 8080 tcp 60 2>&1) || { echo "$out"; e2e_fail "natpmpc -a tcp failed"; }
echo "$out" | grep -i "mapped" | sed 's/^/    /'
tcp_port=$(sed -n 's/.*Mapped public port \([0-9]*\) protocol TCP.*/\1/p' <<<"$out")
[ -n "$tcp_port" ] || { echo "$out"; e2e_fail "natpmpc printed no TCP mapping"; }
got=$(wan_tcp 198.19.0.100 "$tcp_port")
[ "$got" = hello-from-lan ] || e2e_fail "wan -> 198.19.0.100:$tcp_port got '$got'"
e2e_ok "wan -> 198.19.0.100:$tcp_port reached the lan server: '$got'"
out=$(lan natpmpc -g 198.18.0.1 -a 5300 5300 udp 4 2>&1) || { echo "$out"; e2e_fail "natpmpc -a udp failed"; }
udp_port=$(sed -n 's/.*Mapped public port \([0-9]*\) protocol UDP.*/\1/p' <<<"$out")
[ -n "$udp_port" ] || { echo "$out"; e2e_fail "natpmpc printed no UDP mapping"; }
got=$(echo ping-udp | wan timeout 3 socat -T 2 - "UDP4:198.19.0.100:$udp_port,sourceport=40001" 2>/dev/null || true)
[ "$got" = ping-udp ] || e2e_fail "wan -> 198.19.0.100:$udp_port (UDP) got '$got'"
e2e_ok "UDP to 198.19.0.100:$udp_port echoed by the lan host"
e2e_status >/dev/null
grep -q "explicit 198.18.0.2:8080 -> 198.19.0.100:$tcp_port (PCP/NAT-PMP)" "$LAB_DIR/status-$E2E_STATUS_N.txt" ||
  e2e_fail "the status does not show the explicit mapping"
e2e_ok "the status shows the explicit mappings"

e2e_step "deleting the TCP mapping (lifetime 0) closes it; the UDP one expires at its 4 s lifetime"
lan natpmpc -g 198.18.0.1 -a 8080 8080 tcp 0 >/dev/null 2>&1 || e2e_fail "natpmpc delete failed"
[ -z "$(wan_tcp 198.19.0.100 "$tcp_port")" ] || e2e_fail "a deleted mapping still lets new connections in"
e2e_ok "TCP: deleted, filtered again"
sleep 5
got=$(echo late | wan timeout 3 socat -T 1 - "UDP4:198.19.0.100:$udp_port,sourceport=40002" 2>/dev/null || true)
[ -z "$got" ] || e2e_fail "an expired mapping let a new peer in: '$got'"
e2e_ok "UDP: expired, a new peer is filtered"

e2e_step "PCP over IPv6: MAP TCP 8080 from fd00:18::2"
out=$(lan "$PY" "$E2E_DIR/pcp_client.py" fd00:18::1 fd00:18::2 tcp 8080 60) || { echo "$out"; e2e_fail "PCP MAP failed"; }
echo "    $out"
port6=$(sed -n 's/.*external \[2001:db8:19::100\]:\([0-9]*\) .*/\1/p' <<<"$out")
[ -n "$port6" ] || e2e_fail "PCP answered no external endpoint on the global address"
got=$(wan_tcp "[2001:db8:19::100]" "$port6")
[ "$got" = hello-from-lan6 ] || e2e_fail "wan -> [2001:db8:19::100]:$port6 got '$got'"
e2e_ok "wan -> [2001:db8:19::100]:$port6 reached the lan server: '$got'"
out=$(lan "$PY" "$E2E_DIR/pcp_client.py" fd00:18::1 fd00:18::2 tcp 8080 60 || true)
grep -q ":$port6 " <<<"$out" || e2e_fail "a refreshed mapping changed its port: $out"
e2e_ok "refreshed: the same port"

e2e_step "a PCP request whose client address is not its source is refused (ADDRESS_MISMATCH)"
out=$(lan "$PY" "$E2E_DIR/pcp_client.py" fd00:18::1 fd00:18::2 tcp 8081 60 0 fd00:18::3 2>&1 || true)
grep -q "result 12 " <<<"$out" || e2e_fail "a mismatched request was not refused with ADDRESS_MISMATCH: $out"
e2e_ok "refused: $out"

e2e_stop_natd
e2e_pass
