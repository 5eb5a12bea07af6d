#!/usr/bin/env bash
# sighup_test: log rotation. With a live mapping, the log is renamed and natd
# gets SIGHUP: it writes on in a new file at the old path, and the mapping is
# still there (same external port) afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
e2e_udp_echo_servers
e2e_start_natd

e2e_step "a mapping before the rotation"
e2e_udp_echo_check 4
e2e_status
before=$(grep -cE "^    198\.18\.0\.2:[0-9]+ -> " "$LAB_DIR/status-$E2E_STATUS_N.txt" || true)
[ "$before" -ge 1 ] || e2e_fail "no mapping in the status before SIGHUP"
grep -q "mapping+ udp 198.18.0.2" "$LAB_DIR/natd.log" || e2e_fail "the log has no mapping line"
e2e_ok "$before mapping line(s) in the status, logged"
sessions_before=$(grep -E "^    198\.18\.0\.2:[0-9]+ -> " "$LAB_DIR/status-$E2E_STATUS_N.txt" | awk '{print $1, $3}' | sort)

e2e_step "rotate: rename the log, SIGHUP"
mv "$LAB_DIR/natd.log" "$LAB_DIR/natd.log.1"
kill -HUP "$NATD_PID"
for _ in $(seq 40); do [ -f "$LAB_DIR/natd.log" ] && break; sleep 0.05; done
[ -f "$LAB_DIR/natd.log" ] || e2e_fail "no new log file after SIGHUP"
grep -q "log reopened" "$LAB_DIR/natd.log" || e2e_fail "the new log does not say it was reopened"
kill -0 "$NATD_PID" || e2e_fail "natd died on SIGHUP"
e2e_ok "natd writes to a new $LAB_DIR/natd.log"

e2e_step "the mapping survived, new ones go to the new log"
e2e_status
sessions_after=$(grep -E "^    198\.18\.0\.2:[0-9]+ -> " "$LAB_DIR/status-$E2E_STATUS_N.txt" | awk '{print $1, $3}' | sort)
[ "$sessions_before" = "$sessions_after" ] || e2e_fail "mappings changed across SIGHUP: '$sessions_before' vs '$sessions_after'"
e2e_ok "same mappings after SIGHUP: $sessions_after"
e2e_udp_echo_check 6
for _ in $(seq 40); do grep -q "mapping+ udp \[fd00:18::2\]" "$LAB_DIR/natd.log" && break; sleep 0.05; done
grep -q "mapping+ udp \[fd00:18::2\]" "$LAB_DIR/natd.log" || e2e_fail "a new mapping was not logged to the new file"
e2e_ok "a new mapping is logged to the new file"

e2e_step "stop natd"
e2e_stop_natd
e2e_pass
