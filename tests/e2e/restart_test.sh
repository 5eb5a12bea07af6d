#!/usr/bin/env bash
# restart_test: restarts without loss (--state_file). natd runs with two
# workers and symmetric TCP mappings (random external ports, and an unknown
# inbound segment is dropped), so a connection can only survive a restart if
# natd restores its very mapping:
#  1. TCP connections lan -> wan (IPv4 and IPv6, restart_tcp.py) exchange
#     data; natd gets SIGTERM, saves its tables and exits 0;
#  2. natd starts again with the same flags, logs what it restored, its status
#     shows the connections' sessions (established, same external ports), and
#     both connections carry data again, the far end speaking first, then
#     close with FIN/FIN;
#  3. a corrupt state file: natd starts anyway, logs the refusal and why,
#     starts empty (a connection from before the restart is broken: the
#     control that shows step 2 is not luck), and new traffic flows.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"

e2e_lab_up
e2e_udp_echo_servers
STATE=$LAB_DIR/natd.state
FLAGS=(--workers=2 --tcp_preset=symmetric --state_file="$STATE")

# connection NAME FAMILY PORT [--expect-broken]: restart_tcp.py in the
# background, resuming once $LAB_DIR/resume-NAME exists; waits until it is
# established and sets CONN_INSIDE / CONN_EXT (inside and external port).
connection() {
  local name=$1 fam=$2 port=$3
  shift 3
  rm -f "$LAB_DIR/resume-$name"
  "$PY" "$E2E_DIR/restart_tcp.py" --lan "$LAN" --wan "$WAN" --family "$fam" --port "$port" \
    --resume "$LAB_DIR/resume-$name" "$@" >"$LAB_DIR/conn-$name.log" 2>&1 &
  eval "CONN_PID_$name=$!"
  local i
  for i in $(seq 100); do
    grep -q "^ESTABLISHED" "$LAB_DIR/conn-$name.log" && break
    kill -0 "$(eval echo "\$CONN_PID_$name")" 2>/dev/null || break
    sleep 0.05
  done
  grep -q "^ESTABLISHED" "$LAB_DIR/conn-$name.log" || {
    cat "$LAB_DIR/conn-$name.log" >&2
    e2e_fail "connection $name (IPv$fam) did not come up through natd"
  }
  read -r _ CONN_INSIDE CONN_EXT < <(grep "^ESTABLISHED" "$LAB_DIR/conn-$name.log")
  e2e_ok "connection $name: IPv$fam, inside port $CONN_INSIDE, the server sees external port $CONN_EXT"
}

# finish NAME: lets the connection go on and waits for its verdict.
finish() {
  local name=$1 pid rc=0
  pid=$(eval echo "\$CONN_PID_$name")
  touch "$LAB_DIR/resume-$name"
  wait "$pid" || rc=$?
  sed 's/^/    /' "$LAB_DIR/conn-$name.log"
  return "$rc"
}

# session_line TABLE INSIDE EXT: the status line of that session (last dump).
session_line() {
  awk '/^  [a-z0-9]+ /{t=$1} /^    /{print t " " substr($0, 5)}' "$LAB_DIR/status-$E2E_STATUS_N.txt" |
    grep -F "$1 $2 -> $3 " || true
}

e2e_step "run 1: natd ${FLAGS[*]}; two TCP connections through it"
e2e_start_natd "${FLAGS[@]}"
grep -q "natd: state: no $STATE yet; starting empty" "$LAB_DIR/natd.log" ||
  e2e_fail "natd's log does not say that there is no state file yet"
connection v4 4 6101
ins4=$CONN_INSIDE ext4=$CONN_EXT
connection v6 6 6102
ins6=$CONN_INSIDE ext6=$CONN_EXT
e2e_udp_echo_check 4
sleep 0.3  # the last ACKs through natd before it stops

e2e_step "SIGTERM: natd saves its tables"
e2e_stop_natd
grep -qE "^natd: state: saved [0-9]+ sessions to $STATE " "$LAB_DIR/natd.out" ||
  e2e_fail "natd did not report saving its state"
[ -s "$STATE" ] || e2e_fail "no state file at $STATE"
[ "$(stat -c %a "$STATE")" = 600 ] || e2e_fail "the state file is not private (mode $(stat -c %a "$STATE"))"
ls "$STATE".tmp.* >/dev/null 2>&1 && e2e_fail "a temporary state file was left behind"
e2e_ok "$(grep '^natd: state: saved' "$LAB_DIR/natd.out"), mode 600"

e2e_step "run 2: natd again with the same flags; the connections carry on"
e2e_start_natd "${FLAGS[@]}"
grep -qE "natd: state: restored [0-9]+ sessions \([0-9]+ mappings\) from $STATE" "$LAB_DIR/natd.log" ||
  e2e_fail "natd's log does not say it restored its state"
e2e_ok "$(grep 'natd: state: restored' "$LAB_DIR/natd.log")"
e2e_status >/dev/null
for s in "tcp4|198.18.0.2:$ins4|198.19.0.100:$ext4" "tcp6|[fd00:18::2]:$ins6|[2001:db8:19::100]:$ext6"; do
  IFS='|' read -r table inside ext <<<"$s"
  line=$(session_line "$table" "$inside" "$ext")
  [ -n "$line" ] || { cat "$LAB_DIR/status-$E2E_STATUS_N.txt"; e2e_fail "status: no $table session $inside -> $ext"; }
  grep -q " established " <<<"$line" || e2e_fail "status: the restored session is not established: $line"
  e2e_ok "status: $line"
done
for name in v4 v6; do
  finish "$name" || e2e_fail "connection $name did not survive the restart"
  grep -q "^ALIVE" "$LAB_DIR/conn-$name.log" && grep -q "^CLOSED" "$LAB_DIR/conn-$name.log" ||
    e2e_fail "connection $name: no ALIVE and CLOSED"
  e2e_ok "connection $name: data both ways after the restart (the far end first), then FIN/FIN"
done
# Restored, not made again: no second mapping for these inside endpoints.
for re in "198\.18\.0\.2:$ins4 ext $ext4" "\[fd00:18::2\]:$ins6 ext $ext6"; do
  n=$(grep -cE "mapping\+ tcp6? $re " "$LAB_DIR/natd.log" || true)
  [ "$n" = 2 ] || e2e_fail "natd's log shows $n 'mapping+' lines for $re (expected 2: made, then restored)"
  n=$(grep -cE "mapping\+ tcp6? ${re%% ext *} " "$LAB_DIR/natd.log" || true)
  [ "$n" = 2 ] || e2e_fail "natd's log shows $n mappings for ${re%% ext *} (a new one was made after the restart)"
done
e2e_ok "natd's log: each connection's mapping made once and restored once, on the same external port"
connection control 4 6103 --expect-broken
e2e_stop_natd

e2e_step "run 3: a corrupt state file is refused; natd starts empty and works"
"$PY" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[len(b) // 2] ^= 0x5a
open(sys.argv[1], "wb").write(b)' "$STATE"
e2e_start_natd "${FLAGS[@]}"
grep -qE "natd: state: $STATE refused: checksum mismatch.*; starting empty" "$LAB_DIR/natd.log" ||
  e2e_fail "natd's log does not report the refused state file"
e2e_ok "$(grep 'natd: state: .* refused' "$LAB_DIR/natd.log")"
finish control || e2e_fail "the control connection still worked, or failed wrongly, with no state restored"
grep -q "^BROKEN" "$LAB_DIR/conn-control.log" || e2e_fail "the control connection did not report BROKEN"
e2e_ok "without its state natd drops the old connection's segments (the control)"
e2e_udp_echo_check 4
e2e_udp_echo_check 6
e2e_ping_check 4 198.19.0.2
e2e_stop_natd

e2e_pass
