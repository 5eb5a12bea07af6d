#!/usr/bin/env bash
# tcp_state_test: natd's TCP session timeouts with real connections, IPv4 and
# IPv6, natd run with --tcp_transitory_timeout=3s --tcp_established_timeout=30s
# (and symmetric TCP mappings, see below):
#  - an established connection (tcp_idle.py) stays idle 6 s (longer than the
#    transitory timeout, shorter than the established one) and must still carry
#    data afterwards; meanwhile the status shows it "established";
#  - after a FIN/FIN close the session is "closing" and gone from the status
#    within the transitory timeout (plus the status' polling slack);
#  - a half-open connection (one SYN into a blackhole on wan, never answered)
#    is "syn-out" and gone after the transitory timeout.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
# Silent drops two hops out: wan discards these without an ICMP error.
ip -n "$WAN" route add blackhole 198.51.100.99/32
ip -n "$WAN" -6 route add blackhole 2001:db8:51::99/128
# TCP mappings symmetric (random external ports): were the idle session lost,
# the next segment would start a new mapping on another port and the
# connection would break, instead of being silently picked up midstream on the
# same (preserved) port.
e2e_start_natd --tcp_transitory_timeout=3s --tcp_established_timeout=30s --tcp_preset=symmetric

# session LABEL TABLE REGEX: prints the matching session lines of the last
# status dump as "TABLE LINE" (empty when none).
session() {
  awk '/^  [a-z0-9]+ /{t=$1} /^    /{print t " " substr($0, 5)}' "$LAB_DIR/status-$E2E_STATUS_N.txt" |
    grep -E "^$1 $2" || true
}
expires_of() { sed -nE 's/.* expires=(-?[0-9]+)s .*/\1/p' <<<"$1" | head -n 1; }

e2e_step "half-open connections: one SYN each to 198.51.100.99:80 and [2001:db8:51::99]:80 (blackholed)"
for dst in 198.51.100.99 2001:db8:51::99; do
  lan "$PY" -c '
import socket, sys, time
dst = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_STREAM)
s.setblocking(False)
s.connect_ex((dst, 80))
time.sleep(0.3)  # one SYN; closing in SYN-SENT sends nothing
s.close()' $dst
done
sleep 0.5
e2e_status >/dev/null
for pair in "tcp4|198\.51\.100\.99:80" "tcp6|\[2001:db8:51::99\]:80"; do
  IFS='|' read -r table re <<<"$pair"
  set -- "$table" "$re"
  line=$(session "$1" ".* <-> $2 syn-out ")
  [ -n "$line" ] || { cat "$LAB_DIR/status-$E2E_STATUS_N.txt"; e2e_fail "status: no $1 syn-out session to $2"; }
  exp=$(expires_of "$line")
  [ "$exp" -le 3 ] || e2e_fail "status: half-open $1 session expires in $exp s, more than the transitory 3 s"
  e2e_ok "status: $line"
done

e2e_step "two connections (IPv4, IPv6) through natd, 64 KiB each way, then 6 s idle"
for fam in 4 6; do
  "$PY" "$E2E_DIR/tcp_idle.py" --lan "$LAN" --wan "$WAN" --family $fam --port 6000 --idle 6 \
    >"$LAB_DIR/tcp_idle$fam.log" 2>&1 &
  eval "idle_pid$fam=$!"
done
for i in $(seq 100); do
  grep -q "^ESTABLISHED" "$LAB_DIR/tcp_idle4.log" && grep -q "^ESTABLISHED" "$LAB_DIR/tcp_idle6.log" && break
  sleep 0.05
done
t_idle=$(date +%s%N)
for fam in 4 6; do
  cat "$LAB_DIR/tcp_idle$fam.log" | sed 's/^/    /'
  grep -q "^ESTABLISHED" "$LAB_DIR/tcp_idle$fam.log" || e2e_fail "IPv$fam: the TCP connection did not come up"
done
port4=$(awk '/^ESTABLISHED/{print $2}' "$LAB_DIR/tcp_idle4.log")
port6=$(awk '/^ESTABLISHED/{print $2}' "$LAB_DIR/tcp_idle6.log")

e2e_step "idle 4.5 s: established sessions still there (timeout 30 s), half-open ones expired (3 s)"
sleep "$(awk -v t0="$t_idle" -v now="$(date +%s%N)" 'BEGIN {d = 4.5 - (now - t0) / 1e9; print (d > 0 ? d : 0)}')"
e2e_status
for pair in "tcp4|198\.18\.0\.2:$port4 .* <-> 198\.19\.0\.2:6000" \
  "tcp6|\[fd00:18::2\]:$port6 .* <-> \[2001:db8:19::2\]:6000"; do
  IFS='|' read -r table re <<<"$pair"
  set -- "$table" "$re"
  line=$(session "$1" "$2 established ")
  [ -n "$line" ] || e2e_fail "status: no established $1 session $2 after 4.5 s idle"
  exp=$(expires_of "$line")
  [ "$exp" -ge 20 ] && [ "$exp" -le 30 ] ||
    e2e_fail "status: the established session expires in $exp s, not within the 30 s established timeout"
  e2e_ok "status: $line"
done
for pair in "tcp4|198\.51\.100\.99:80" "tcp6|\[2001:db8:51::99\]:80"; do
  IFS='|' read -r table re <<<"$pair"
  set -- "$table" "$re"
  [ -z "$(session "$1" ".* <-> $2 ")" ] || e2e_fail "status: the half-open $1 session to $2 outlived the 3 s timeout"
  e2e_ok "status: the half-open $1 session to $2 is gone (expired)"
done
grep -qE "mapping- tcp 198\.18\.0\.2:[0-9]+ ext [0-9]+ .*expired" "$LAB_DIR/natd.log" ||
  e2e_fail "natd's log has no 'mapping- tcp ... expired' line for the half-open IPv4 session"

e2e_step "after the pause: data again, then FIN/FIN"
for fam in 4 6; do
  pid_var=idle_pid$fam
  rc=0
  wait "${!pid_var}" || rc=$?
  sed 's/^/    /' "$LAB_DIR/tcp_idle$fam.log"
  [ "$rc" = 0 ] || e2e_fail "IPv$fam: the connection did not survive 6 s idle (tcp_idle.py exit $rc)"
  grep -q "^ALIVE" "$LAB_DIR/tcp_idle$fam.log" && grep -q "^CLOSED" "$LAB_DIR/tcp_idle$fam.log" ||
    e2e_fail "IPv$fam: tcp_idle.py did not report ALIVE and CLOSED"
  e2e_ok "IPv$fam: the connection carried data after 6 s idle, then closed"
done
t_closed=$SECONDS
for re in "198\.18\.0\.2:$port4" "\[fd00:18::2\]:$port6"; do
  n=$(grep -cE "mapping\+ tcp6? $re " "$LAB_DIR/natd.log" || true)
  [ "$n" = 1 ] || e2e_fail "natd's log shows $n mappings for $re (expected 1: the session must not be re-created)"
done
e2e_ok "natd's log: one mapping per connection, never re-created"
e2e_status >/dev/null
for pair in "tcp4|198\.18\.0\.2:$port4 .* <-> 198\.19\.0\.2:6000" \
  "tcp6|\[fd00:18::2\]:$port6 .* <-> \[2001:db8:19::2\]:6000"; do
  IFS='|' read -r table re <<<"$pair"
  set -- "$table" "$re"
  line=$(session "$1" "$2 closing ")
  [ -n "$line" ] || { cat "$LAB_DIR/status-$E2E_STATUS_N.txt"; e2e_fail "status: no closing $1 session after FIN/FIN"; }
  exp=$(expires_of "$line")
  [ "$exp" -le 3 ] || e2e_fail "status: the closed session expires in $exp s, more than the transitory 3 s"
  e2e_ok "status: $line"
done

e2e_step "the closed sessions must be gone after the transitory timeout"
gone=
while [ $((SECONDS - t_closed)) -le 5 ]; do
  e2e_status >/dev/null
  if [ -z "$(session tcp4 "198\.18\.0\.2:$port4 ")" ] && [ -z "$(session tcp6 "\[fd00:18::2\]:$port6 ")" ]; then
    gone=$((SECONDS - t_closed))
    break
  fi
  sleep 0.5
done
[ -n "$gone" ] || e2e_fail "the closed sessions are still in the status $((SECONDS - t_closed)) s after FIN/FIN"
e2e_ok "both closed sessions gone from the status within ${gone}s (transitory timeout 3 s)"
for re in "198\.18\.0\.2:$port4" "\[fd00:18::2\]:$port6"; do
  grep -qE "mapping- tcp6? $re ext [0-9]+ .*expired" "$LAB_DIR/natd.log" ||
    e2e_fail "natd's log has no 'mapping- ... expired' line for the closed session $re"
done
e2e_ok "natd's log: both closed sessions expired"
e2e_status | grep -E "^  tcp[46] " | sed 's/^/    /'

e2e_step "stop natd"
e2e_stop_natd
e2e_pass
