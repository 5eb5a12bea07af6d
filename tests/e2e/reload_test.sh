#!/usr/bin/env bash
# reload_test: SIGHUP re-reads natd's --flagfile.
#  - a live setting (--icmp_timeout 60s -> 2s) applies at once, a restart-only
#    one (--workers) is logged and ignored, and no mapping is lost: the UDP
#    mapping and a running ping's ICMP session are still there, the ping's
#    next refresh gives it the new timeout, and a new ICMP session expires
#    after 2 s instead of 60;
#  - a bad file (UDP timeout under 2 min; an unknown flag) is rejected whole,
#    logged with the flag's name, and natd runs on with the settings it had.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

FLAGS=$LAB_DIR/natd.flags
LOG=$LAB_DIR/natd.log

# sessions_of TABLE FILE: the session lines of one table (udp4, icmp4...) of a status dump.
sessions_of() { awk -v t="$1" '/^shard/ {on = 0} /^  [a-z]/ {on = ($1 == t)} on && /^    /' "$2"; }
expires_of() { sed -nE 's/.* expires=(-?[0-9]+)s .*/\1/p' <<<"$1" | head -n 1; }
# reload EXPECTED_LINE: SIGHUP, then waits (5 s at most) for natd to log the line.
reload() {
  kill -HUP "$NATD_PID"
  for _ in $(seq 100); do grep -qF -- "$1" "$LOG" && break; sleep 0.05; done
  grep -F "natd: reload:" "$LOG" | tail -n 3 | sed 's/^/    log: /'
  grep -qF -- "$1" "$LOG" || e2e_fail "natd did not log '$1' after SIGHUP"
  kill -0 "$NATD_PID" || e2e_fail "natd died on SIGHUP"
}
# newest_icmp_mapping: the inside endpoint (198.18.0.2:ID) of the last ICMP mapping natd logged.
newest_icmp_mapping() { grep -E " mapping\+ icmp 198\.18\.0\.2:" "$LOG" | tail -n 1 | awk '{print $4}'; }
# wait_icmp_expired ENDPOINT SECONDS: waits for the log to say the mapping expired.
wait_icmp_expired() {
  for _ in $(seq $(($2 * 10))); do
    grep -F " mapping- icmp $1 ext " "$LOG" | grep -q " expired$" && return 0
    sleep 0.1
  done
  return 1
}
# new_ping_expires_within SECONDS: a new echo session (ping -c 1) must expire that soon.
new_ping_expires_within() {
  local before t0 ep
  before=$(grep -c " mapping+ icmp " "$LOG" || true)
  e2e_ping_check 4 198.19.0.2 1
  t0=$SECONDS
  for _ in $(seq 40); do [ "$(grep -c " mapping+ icmp " "$LOG" || true)" -gt "$before" ] && break; sleep 0.05; done
  ep=$(newest_icmp_mapping)
  [ -n "$ep" ] || e2e_fail "no ICMP mapping logged for the ping"
  wait_icmp_expired "$ep" "$1" || e2e_fail "the ICMP session of $ep did not expire within $1 s"
  e2e_ok "the new ICMP session $ep expired after about $((SECONDS - t0)) s"
}

e2e_lab_up
e2e_udp_echo_servers
cat >"$FLAGS" <<'EOF'
# natd's settings; SIGHUP re-reads this file
--icmp_timeout=60s
EOF
e2e_start_natd --flagfile="$FLAGS"

e2e_step "mappings before the reload: UDP, and a running ping's ICMP session (60 s timeout)"
e2e_udp_echo_check 4
e2e_bg "$LAN" ping_a ping -n -i 0.5 198.19.0.2
PING_A=$E2E_BG_PID
for _ in $(seq 40); do grep -q " mapping+ icmp 198.18.0.2:" "$LOG" && break; sleep 0.05; done
e2e_status >/dev/null
status1=$LAB_DIR/status-$E2E_STATUS_N.txt
udp_before=$(sessions_of udp4 "$status1" | awk '{print $1, $3}')
icmp_a=$(sessions_of icmp4 "$status1")
[ -n "$udp_before" ] || e2e_fail "no UDP mapping in the status"
[ "$(wc -l <<<"$icmp_a")" = 1 ] && [ -n "$icmp_a" ] || e2e_fail "expected one ICMP session, got: '$icmp_a'"
ep_a=$(awk '{print $1}' <<<"$icmp_a")
[ "$(expires_of "$icmp_a")" -ge 50 ] || e2e_fail "the ICMP session expires in $(expires_of "$icmp_a") s, not ~60"
e2e_ok "UDP $udp_before; ICMP $ep_a expires in $(expires_of "$icmp_a") s"

e2e_step "reload: --icmp_timeout=2s (live), --workers=2 (restart-only)"
cat >"$FLAGS" <<'EOF'
# natd's settings; SIGHUP re-reads this file
--icmp_timeout=2s
--workers=2
--log_invalid_per_second=5
EOF
reload "natd: reload: icmp_timeout 1m -> 2s, log_invalid_per_second 20 -> 5"
grep -qF "natd: reload: --workers changed from 1 to 2: needs a restart; ignored" "$LOG" ||
  e2e_fail "the restart-only change of --workers was not reported"
e2e_ok "live changes applied and logged, --workers reported as needing a restart"

e2e_step "no mapping lost; the ping's refreshes now give its session the 2 s timeout"
sleep 1  # two echoes of the running ping: refreshed with the new timeout
e2e_status >/dev/null
status2=$LAB_DIR/status-$E2E_STATUS_N.txt
if grep -q "^shard 1" "$status2"; then e2e_fail "a second worker appeared: --workers must need a restart"; fi
udp_after=$(sessions_of udp4 "$status2" | awk '{print $1, $3}')
[ "$udp_before" = "$udp_after" ] || e2e_fail "the UDP mapping changed across SIGHUP: '$udp_before' vs '$udp_after'"
icmp_a2=$(sessions_of icmp4 "$status2" | grep -F "    $ep_a -> " || true)
[ -n "$icmp_a2" ] || e2e_fail "the running ping's ICMP session $ep_a was lost"
[ "$(expires_of "$icmp_a2")" -le 2 ] || e2e_fail "$ep_a expires in $(expires_of "$icmp_a2") s, not within the new 2 s"
e2e_ok "UDP $udp_after kept; ICMP $ep_a kept, now expires in $(expires_of "$icmp_a2") s"
kill "$PING_A"
wait_icmp_expired "$ep_a" 5 || e2e_fail "$ep_a did not expire within 5 s of its last echo"
e2e_ok "$ep_a expired within 5 s of its ping's end"
new_ping_expires_within 5

e2e_step "a bad file is rejected whole; natd runs on with the settings it had"
cat >"$FLAGS" <<'EOF'
--icmp_timeout=60s
--udp_timeout=10s
EOF
reload "natd: reload: rejected, the running settings stay: --udp_timeout: must be at least 2m"
printf -- '--icmp_timeout=60s\n--no_such_flag=1\n' >"$FLAGS"
reload "natd: reload: rejected, the running settings stay: $FLAGS:2: unknown flag --no_such_flag"
new_ping_expires_within 5  # still 2 s: nothing of the bad files applied
e2e_status >/dev/null
udp_end=$(sessions_of udp4 "$LAB_DIR/status-$E2E_STATUS_N.txt" | awk '{print $1, $3}')
[ "$udp_before" = "$udp_end" ] || e2e_fail "the UDP mapping changed: '$udp_before' vs '$udp_end'"
e2e_ok "UDP $udp_end still there"

e2e_step "stop natd"
e2e_stop_natd
e2e_pass
