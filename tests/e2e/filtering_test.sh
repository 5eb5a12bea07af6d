#!/usr/bin/env bash
# filtering_test: every preset's UDP mapping and filtering behaviour, seen from
# outside with real sockets (nat_behavior.py): a lan socket sends to
# 198.19.0.2:5000, which learns natd's external port; unsolicited packets to
# that port from 198.19.0.2:5001 (same address) and 198.19.0.3:5000 (other
# address) must be delivered or dropped as the preset's filtering says (EIF,
# ADF, APDF); the external ports used towards the other address / other port
# must be the same, the next, or another one as the preset's mapping and port
# strategy say. natd's drop counters must agree. IPv4 for every preset, IPv6
# for one.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up

# preset  filtering  towards-other-address  towards-other-port  family
cases="
full-cone                   EIF   same  same  4
restricted-cone             ADF   same  same  4
port-restricted-cone        APDF  same  same  4
symmetric                   APDF  other other 4
quasi-restricted-cone       ADF   same  same  4
quasi-port-restricted-cone  APDF  same  same  4
quasi-symmetric             APDF  other other 4
address-dependent           ADF   next  same  4
address-port-dependent      APDF  next  next  4
restricted-cone             ADF   same  same  6
address-port-dependent      APDF  next  next  6
"

while read -r preset filtering to_addr to_port fam; do
  [ -n "$preset" ] || continue
  e2e_step "IPv$fam --preset=$preset: expect $filtering, towards another address: $to_addr port, another port: $to_port port"
  e2e_start_natd --preset="$preset"
  if ! "$PY" "$E2E_DIR/nat_behavior.py" --lan "$LAN" --wan "$WAN" --family "$fam" --filtering "$filtering" \
    --to-other-address "$to_addr" --to-other-port "$to_port" 2>&1 | sed 's/^/    /'; then
    e2e_fail "IPv$fam $preset: the behaviour seen from outside is not $filtering / $to_addr / $to_port"
  fi
  e2e_ok "IPv$fam $preset behaves as $filtering, $to_addr / $to_port"
  e2e_stop_natd
  # Each unsolicited packet was sent twice; every one not delivered is a drop.
  case $filtering in EIF) want=0 ;; ADF) want=2 ;; APDF) want=4 ;; esac
  got=$(($(e2e_counter drop.inbound-filtered) + $(e2e_counter drop.inbound-no-mapping)))
  [ "$got" = "$want" ] ||
    e2e_fail "IPv$fam $preset: natd counted $got inbound-filtered/no-mapping drops, expected $want"
  e2e_ok "natd counted $got inbound drops (drop.inbound-filtered $(e2e_counter drop.inbound-filtered))"
done <<<"$cases"

e2e_pass
