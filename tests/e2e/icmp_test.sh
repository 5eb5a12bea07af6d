#!/usr/bin/env bash
# icmp_test: ICMP errors come back through natd, translated, IPv4 and IPv6.
#  - traceroute (UDP, ICMP and TCP SYN mode) from lan to the far host shows every hop:
#    the router twice (its own TTL check, then again after natd: NETLAB.md),
#    the wan host, the far host; no probe unanswered;
#  - UDP to a closed port on wan: a connected socket gets ECONNREFUSED (the
#    port unreachable, translated), an open port echoes; TCP to a closed port
#    gets connection refused (RST);
#  - the lan host's own ICMP error (a port unreachable for a reply to a
#    closed socket) leaves translated: the wan socket gets ECONNREFUSED;
#  - PMTU: the wan<->far link gets MTU 1280 (wan-far); a UDP socket and ping
#    with "don't fragment" from lan to far must learn the path MTU 1280 from
#    the Fragmentation Needed / Packet Too Big that natd translates back.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
e2e_udp_echo_servers
e2e_start_natd --preset=port-restricted-cone

# check_traceroute FAMILY MODE: runs traceroute (two probes per hop) to the far
# host and requires exactly the hops router, router, wan, far.
check_traceroute() {
  local fam=$1 mode=$2 far r1 r2 w out hops
  if [ "$fam" = 4 ]; then
    far=198.51.100.2 r1=198.18.0.1 r2='198\.1[89]\.0\.1' w=198.19.0.2
  else
    far=2001:db8:51::2 r1=fd00:18::1 r2='(fd00:18|2001:db8:19)::1' w=2001:db8:19::2
  fi
  out=$(lan timeout 20 traceroute -"$fam" -n $mode -q 2 -w 2 -m 8 $far 2>&1) || true
  echo "$out" | sed 's/^/    /'
  hops=$(tail -n +2 <<<"$out" | awk '{print $1 " " $2}')
  if grep -q '\*' <<<"$(tail -n +2 <<<"$out")"; then
    e2e_fail "IPv$fam traceroute ${mode:-(UDP)}: a probe went unanswered (an ICMP error was not translated back?)"
  fi
  grep -qxE "1 ${r1//./\\.}" <<<"$hops" || e2e_fail "IPv$fam traceroute ${mode:-(UDP)}: hop 1 is not the router ($r1)"
  grep -qxE "2 $r2" <<<"$hops" ||
    e2e_fail "IPv$fam traceroute ${mode:-(UDP)}: hop 2 is not the router again (time exceeded after natd)"
  grep -qxE "3 ${w//./\\.}" <<<"$hops" || e2e_fail "IPv$fam traceroute ${mode:-(UDP)}: hop 3 is not the wan host $w"
  grep -qxE "4 ${far//./\\.}" <<<"$hops" || e2e_fail "IPv$fam traceroute ${mode:-(UDP)}: hop 4 is not $far"
  [ "$(echo "$hops" | wc -l)" = 4 ] || e2e_fail "IPv$fam traceroute ${mode:-(UDP)}: expected 4 hops"
  e2e_ok "IPv$fam traceroute ${mode:-(UDP)}: router, router, $w, $far; every probe answered"
}

for fam in 4 6; do
  e2e_step "IPv$fam traceroute to the far host (UDP, ICMP, TCP)"
  check_traceroute $fam ""
  check_traceroute $fam -I
  check_traceroute $fam "-T -p 80"
done

for fam in 4 6; do
  if [ $fam = 4 ]; then dst=198.19.0.2; else dst=2001:db8:19::2; fi
  e2e_step "IPv$fam UDP and TCP to closed ports on $dst"
  e2e_check "IPv$fam UDP to open port $dst:7000 echoes" lan "$PY" "$E2E_DIR/udp_probe.py" $dst 7000 echo
  e2e_check "IPv$fam UDP to closed port $dst:9: ECONNREFUSED" lan "$PY" "$E2E_DIR/udp_probe.py" $dst 9 refused
  e2e_check "IPv$fam UDP to closed port $dst:5353: ECONNREFUSED" lan "$PY" "$E2E_DIR/udp_probe.py" $dst 5353 refused
  rc=0
  lan curl -gsS --max-time 5 -o /dev/null "http://$([ $fam = 6 ] && echo "[$dst]" || echo $dst):8001/" 2>/dev/null || rc=$?
  [ "$rc" = 7 ] || e2e_fail "IPv$fam TCP to closed port $dst:8001: curl exit $rc, expected 7 (connection refused)"
  e2e_ok "IPv$fam TCP to closed port $dst:8001: connection refused"
done

for fam in 4 6; do
  if [ $fam = 4 ]; then dst=198.19.0.2; else dst=2001:db8:19::2; fi
  e2e_step "IPv$fam: the lan host's own port unreachable goes out translated (RFC 5508)"
  wan "$PY" "$E2E_DIR/unreachable_inside.py" $dst 7100 >"$LAB_DIR/unreach$fam.txt" 2>&1 &
  waiter=$!
  sleep 0.3
  # One datagram from a socket that closes at once: the reply finds the port closed.
  lan "$PY" -c "import socket,sys; f=socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET; \
s=socket.socket(f, socket.SOCK_DGRAM); s.sendto(b'hello', (sys.argv[1], 7100)); s.close()" $dst
  rc=0
  wait $waiter || rc=$?
  sed 's/^/    /' "$LAB_DIR/unreach$fam.txt"
  [ $rc = 0 ] || e2e_fail "IPv$fam: the wan socket did not get ECONNREFUSED for its reply"
  e2e_ok "IPv$fam: the wan socket's reply to natd's port was refused by the lan host, through natd"
done

e2e_step "PMTU: MTU 1280 on the wan<->far link (wan-far and far0)"
ip -n "$WAN" link set wan-far mtu 1280
ip -n "$FAR" link set far0 mtu 1280
for fam in 6 4; do
  if [ $fam = 4 ]; then far=198.51.100.2; else far=2001:db8:51::2; fi
  e2e_step "IPv$fam PMTU discovery lan -> $far through natd"
  lan ip -"$fam" route flush cache 2>/dev/null || true
  e2e_check "IPv$fam: a 1200-byte ping passes the 1280 link" lan ping -"$fam" -n -c 1 -W 2 -s 1200 -M "do" $far
  route=$(lan ip -"$fam" route get $far)
  ! grep -q "mtu 1280" <<<"$route" || e2e_fail "IPv$fam: lan already knows the PMTU before the test: $route"
  e2e_check "IPv$fam UDP, don't fragment, 1400 bytes: the socket learns path MTU 1280" \
    lan "$PY" "$E2E_DIR/pmtu_probe.py" $far 9 1400 1280
  route=$(lan ip -"$fam" route get $far)
  echo "    $route"
  grep -q "mtu 1280" <<<"$route" || e2e_fail "IPv$fam: ip route get $far in lan shows no 'mtu 1280'"
  e2e_ok "IPv$fam: ip route get $far in lan shows mtu 1280"

  lan ip -"$fam" route flush cache
  route=$(lan ip -"$fam" route get $far)
  ! grep -q "mtu 1280" <<<"$route" || e2e_fail "IPv$fam: route cache flush did not forget the PMTU: $route"
  out=$(lan ping -"$fam" -n -c 2 -i 0.5 -W 2 -s 1400 -M "do" $far 2>&1 || true)
  echo "$out" | sed 's/^/    /'
  # The error itself, as ping reports it from its socket's error queue.
  grep -qiE "^From [0-9a-f.:]+ icmp_seq=1 (packet too big: mtu=1280|frag needed and DF set \(mtu = 1280\))" <<<"$out" ||
    e2e_fail "IPv$fam ping -s 1400 -M do: no 'Packet too big'/'Frag needed' with mtu 1280 reached ping"
  e2e_ok "IPv$fam ping -s 1400 -M do: the translated error reached ping (path MTU 1280)"
  route=$(lan ip -"$fam" route get $far)
  grep -q "mtu 1280" <<<"$route" || e2e_fail "IPv$fam: after ping, ip route get $far shows no 'mtu 1280': $route"
  e2e_ok "IPv$fam: after ping, ip route get $far in lan shows mtu 1280"
done

e2e_step "stop natd"
e2e_stop_natd
n=$(e2e_counter icmp_errors_in)
# 6 traceroutes x 2 probes x wan's time exceeded + 2 x 2 UDP traceroutes' port unreachables + 4 port
# unreachables + 4 PMTU errors at least (more: traceroute probes beyond the far host).
[ "$n" -ge 24 ] || e2e_fail "natd counted only $n translated ICMP errors (icmp_errors_in), expected >= 24"
e2e_ok "natd translated $n inbound ICMP errors"
e2e_pass
