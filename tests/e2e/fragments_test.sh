#!/usr/bin/env bash
# fragments_test: UDP datagrams larger than the MTU cross natd in fragments,
# both ways, IPv4 and IPv6 (RFC 4787 REQ-14): the lan kernel cuts the
# request, the wan kernel reassembles it and cuts the echo, the lan kernel
# reassembles that. With 2 workers a datagram's fragments meet in one shard
# and go to the session's. Then scapy sends a datagram's fragments last one
# first: natd holds them until the first arrives. No fragment may be dropped.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
e2e_udp_echo_servers
e2e_start_natd --workers=2 --queues=2

for fam in 4 6; do
  if [ $fam = 4 ]; then dst=198.19.0.2; else dst=2001:db8:19::2; fi
  e2e_step "IPv$fam: datagrams of 3000 and 8000 bytes, echoed"
  e2e_check "IPv$fam: large datagrams echoed byte for byte" \
    lan "$PY" "$E2E_DIR/fragments.py" $fam $dst 7000 3000 8000 1400 3000
  e2e_step "IPv$fam: fragments sent in reverse order"
  e2e_check "IPv$fam: reversed fragments translated, echo whole" \
    lan "$PY" "$E2E_DIR/fragments.py" $fam $dst 7000 reverse
done

e2e_step "stop natd: fragments translated and held, none dropped"
e2e_stop_natd
translated=$(e2e_counter fragments_translated)
held=$(e2e_counter fragments_held)
dropped=$(awk '/^natd totals/{t=1} t && $1 ~ /^drop\..*fragment/ {s += $2} END {print s+0}' "$LAB_DIR/natd.out")
[ "$translated" -ge 20 ] && [ "$held" -ge 2 ] && [ "$dropped" = 0 ] ||
  e2e_fail "fragments_translated $translated (want >= 20), fragments_held $held (want >= 2), fragment drops $dropped"
e2e_ok "fragments_translated $translated, fragments_held $held, no fragment dropped"
e2e_pass
