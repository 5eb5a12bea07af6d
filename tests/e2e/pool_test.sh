#!/usr/bin/env bash
# pool_test: natd with two global IPv4 and two IPv6 addresses (--global4=A,B).
# Every flow of one inside host leaves from the same one (paired pooling,
# RFC 4787 REQ-2), replies find their way back through either address, and
# over the inside hosts both addresses are used.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
# The second addresses route to natd like the first ones.
ip -n "$WAN" route add 198.19.0.101/32 via 198.19.0.1
ip -n "$WAN" -6 route add 2001:db8:19::101/128 via 2001:db8:19::1
# More inside hosts than the lab's two, so that both addresses get some.
for i in $(seq 4 12); do
  ip -n "$LAN" addr add 198.18.0.$i/24 dev lan0
  ip -n "$LAN" addr add fd00:18::$i/64 dev lan0 nodad preferred_lft 0
done
wan "$PY" "$E2E_DIR/reflector.py" 198.19.0.2 2001:db8:19::2 >"$LAB_DIR/reflector.out" 2>&1 &
for _ in $(seq 100); do grep -q ready "$LAB_DIR/reflector.out" && break; sleep 0.05; done
e2e_start_natd --global4=198.19.0.100,198.19.0.101 --global6=2001:db8:19::100,2001:db8:19::101 --workers=2
ip -n "$RTR" route replace 198.19.0.101/32 dev natd0
ip -n "$RTR" -6 route replace 2001:db8:19::101/128 dev natd0

for fam in 4 6; do
  e2e_step "IPv$fam: each inside host keeps one global address"
  used=""
  for i in 2 3 $(seq 4 12); do
    if [ $fam = 4 ]; then src=198.18.0.$i; refl=198.19.0.2; pool="198.19.0.100 198.19.0.101"
    else src=fd00:18::$i; refl=2001:db8:19::2; pool="2001:db8:19::100 2001:db8:19::101"; fi
    out=$(lan "$PY" "$E2E_DIR/pool_probe.py" $src $refl $pool) || { echo "$out"; e2e_fail "IPv$fam: $src is not paired"; }
    echo "    $out"
    used="$used $(awk '{print $4}' <<<"$out")"
  done
  n=$(tr ' ' '\n' <<<"$used" | sort -u | grep -c .)
  [ "$n" = 2 ] || e2e_fail "IPv$fam: the hosts used $n of the 2 addresses"
  e2e_ok "IPv$fam: 11 hosts, each paired with one address; both addresses in use"
done

e2e_stop_natd
e2e_pass
