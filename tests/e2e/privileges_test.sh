#!/usr/bin/env bash
# privileges_test: natd started as root with --user=nobody opens its TUN,
# then runs with no capability in any set (bounding set included) as nobody,
# and still translates: ping and a download through it, v4 and v6.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
e2e_http_server 1
e2e_start_natd --user=nobody

e2e_step "natd's credentials and capabilities (/proc/$NATD_PID/status)"
status=$(cat "/proc/$NATD_PID/status")
grep -E "^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):" <<<"$status" | sed 's/^/    /'
nobody=$(id -u nobody)
grep -qE "^Uid:\s+$nobody\s+$nobody\s+$nobody\s+$nobody$" <<<"$status" || e2e_fail "natd does not run as nobody"
for c in CapInh CapPrm CapEff CapBnd CapAmb; do
  grep -qE "^$c:\s+0+$" <<<"$status" || e2e_fail "$c is not empty"
done
grep -qE "^NoNewPrivs:\s+1$" <<<"$status" || e2e_fail "NoNewPrivs is not set"
grep -qE "^Groups:\s*$" <<<"$status" || e2e_fail "supplementary groups remain"
e2e_ok "natd runs as nobody with no capabilities and no way to regain any"

for fam in 4 6; do
  if [ $fam = 4 ]; then dst=198.19.0.2; else dst=2001:db8:19::2; fi
  e2e_step "IPv$fam through the unprivileged natd"
  e2e_ping_check $fam $dst 2
  e2e_curl_check $fam
done

e2e_step "stop natd"
e2e_stop_natd
e2e_pass
