#!/usr/bin/env bash
# refusal_test: natd with only two external ports. Two lan UDP sockets get
# their echo; the third new flow is refused, and the lan socket learns it at
# once from the ICMP "administratively prohibited" natd answers with
# (EHOSTUNREACH / EACCES), rather than after a timeout. IPv4 and IPv6 (each
# family has its own two ports).
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
e2e_udp_echo_servers
e2e_start_natd --ports=30000-30001 --workers=1

for fam in 4 6; do
  if [ $fam = 4 ]; then dst=198.19.0.2; else dst=2001:db8:19::2; fi
  e2e_step "IPv$fam: two flows fit, the third is refused with an ICMP answer"
  e2e_check "IPv$fam: sockets 0-1 echo, socket 2 is refused by natd's ICMP" \
    lan "$PY" "$E2E_DIR/refused_probe.py" $dst 7000 3 2
done

e2e_step "stop natd: the refusals are counted"
e2e_stop_natd
sent=$(e2e_counter icmp_prohibited_sent)
nop=$(e2e_counter drop.no-free-port)
[ "$sent" = 2 ] && [ "$nop" = 2 ] || e2e_fail "icmp_prohibited_sent $sent, drop.no-free-port $nop (want 2 and 2)"
e2e_ok "icmp_prohibited_sent $sent, drop.no-free-port $nop"
e2e_pass
