#!/usr/bin/env bash
# capture_test: tcpdump on wan0 (in the wan namespace) while lan pings, downloads
# over HTTP, exchanges UDP, runs traceroutes (UDP and ICMP) to the far host and
# sends UDP to a closed port and TCP to a closed port, IPv4 and IPv6 — so that
# the capture holds ICMP errors (time exceeded, port unreachable) with quoted
# headers. check_capture.py then asserts (scapy) that no IP header in the
# capture, quoted ones included, carries an inside address, and that all the
# lan hosts' packets left with natd's global address as source.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
e2e_step "servers in wan (HTTP :8000 with 1 MB, UDP echo :7000); natd"
e2e_http_server 1
e2e_udp_echo_servers
e2e_start_natd --preset=port-restricted-cone

router_mac=$(ip -n "$RTR" -br link show rtr-wan | awk '{print $3}')
e2e_step "tcpdump -i wan0 in wan (router's rtr-wan MAC: $router_mac)"
e2e_bg "$WAN" tcpdump tcpdump -i wan0 -n -U --immediate-mode -B 32768 -s 256 -w "$LAB_DIR/wan0.pcap"
tcpdump_pid=$E2E_BG_PID
for i in $(seq 100); do
  grep -q "listening on wan0" "$LAB_DIR/tcpdump.log" && break
  sleep 0.05
done
grep -q "listening on wan0" "$LAB_DIR/tcpdump.log" || e2e_fail "tcpdump did not start: $(cat "$LAB_DIR/tcpdump.log")"

for fam in 4 6; do
  if [ $fam = 4 ]; then dst=198.19.0.2; far=198.51.100.2; else dst=2001:db8:19::2; far=2001:db8:51::2; fi
  e2e_step "IPv$fam traffic through natd"
  e2e_ping_check $fam $dst 3
  e2e_curl_check $fam
  e2e_udp_echo_check $fam
  e2e_check "IPv$fam UDP to closed port $dst:9 is refused" lan "$PY" "$E2E_DIR/udp_probe.py" $dst 9 refused
  rc=0
  lan curl -gsS --max-time 5 -o /dev/null "http://$([ $fam = 6 ] && echo "[$dst]" || echo $dst):8001/" 2>/dev/null || rc=$?
  [ "$rc" = 7 ] || e2e_fail "IPv$fam TCP to closed port $dst:8001: curl exit $rc, expected 7 (connection refused)"
  e2e_ok "IPv$fam TCP to closed port $dst:8001: connection refused (RST came back)"
  for mode in "" -I; do
    out=$(lan timeout 20 traceroute -$fam -n $mode -q 1 -w 2 -m 6 $far 2>&1) || true
    echo "$out" | sed 's/^/    /'
    grep -q "^ *[0-9]\+ *$far " <<<"$(tail -n 1 <<<"$out")" ||
      e2e_fail "IPv$fam traceroute ${mode:-(UDP)} did not reach $far"
    e2e_ok "IPv$fam traceroute ${mode:-(UDP)} reached $far"
  done
done

e2e_step "stop the capture"
sleep 0.5
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
cat "$LAB_DIR/tcpdump.log"
grep -q "^0 packets dropped by kernel" "$LAB_DIR/tcpdump.log" || e2e_fail "tcpdump dropped packets"

e2e_step "check the capture (scapy)"
e2e_check "the checker itself catches leaks (synthetic packets)" "$PY" "$E2E_DIR/check_capture.py" --self-test
# With TUN offloads on (natd's default) the download crosses as 64 KB
# super-packets, so a few dozen TCP packets carry it.
"$PY" "$E2E_DIR/check_capture.py" "$LAB_DIR/wan0.pcap" --router-mac "$router_mac" --expect \
  out4.icmp=3 out4.tcp=20 out4.udp=3 out6.icmp=3 out6.tcp=20 out6.udp=3 err4=3 err6=3 ||
  e2e_fail "the capture on wan0 shows inside addresses or untranslated packets (see above)"

e2e_step "stop natd"
e2e_stop_natd
e2e_pass
