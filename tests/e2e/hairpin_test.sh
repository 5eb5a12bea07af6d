#!/usr/bin/env bash
# hairpin_test: two inside hosts reach each other by their external
# endpoints through natd (RFC 4787 REQ-9, RFC 5382 REQ-8, RFC 5508 §6), for
# UDP and TCP, IPv4 and IPv6, with 2 workers so that each side's external
# port lies in another shard (port-preserving presets keep A's port 20xxx in
# shard 0's slice and B's 50xxx in shard 1's): every hairpinned packet is
# handed from one worker to the other. Each side sees the other's global
# endpoint, never its inside address; an ICMP error from B comes back to A.
#   full-cone             A reaches B directly (UDP, TCP)
#   port-restricted-cone  A's first datagram is filtered; after B punches a
#                         hole towards A's external endpoint both ways pass
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
wan "$PY" "$E2E_DIR/reflector.py" 198.19.0.2 2001:db8:19::2 >"$LAB_DIR/reflector.out" 2>&1 &
for _ in $(seq 100); do grep -q ready "$LAB_DIR/reflector.out" && break; sleep 0.05; done

run=0
for preset in full-cone port-restricted-cone; do
  if [ $preset = full-cone ]; then mode=open; else mode=punch; fi
  e2e_step "$preset, 2 workers"
  e2e_start_natd --preset=$preset --workers=2 --queues=2
  for fam in 4 6; do
    run=$((run + 1))
    e2e_check "IPv$fam $preset: hairpinned ($mode)" \
      lan "$PY" "$E2E_DIR/hairpin.py" $fam $mode $((20000 + run)) $((50000 + run))
  done
  e2e_stop_natd
  hp=$(e2e_counter hairpinned)
  handed=$(e2e_counter pipeline.handed_off)
  [ "${hp:-0}" -gt 0 ] && [ "${handed:-0}" -gt 0 ] ||
    e2e_fail "hairpinned $hp, pipeline.handed_off $handed (want both > 0)"
  e2e_ok "hairpinned $hp packets, $handed handed from one worker to the other"
done

e2e_step "echo to the global address from inside is not hairpinned (and counted)"
e2e_start_natd --preset=full-cone
lan ping -n -c 2 -W 1 198.19.0.100 >/dev/null 2>&1 && e2e_fail "a ping to the global address was answered"
e2e_stop_natd
[ "$(e2e_counter drop.hairpin-echo)" = 2 ] || e2e_fail "drop.hairpin-echo is $(e2e_counter drop.hairpin-echo), want 2"
e2e_ok "drop.hairpin-echo 2"
e2e_pass
