#!/usr/bin/env bash
# natd refuses bad flags and impossible combinations at start, before it
# touches any device, with exit status 2 and a message naming the flag.
set -uo pipefail
natd=./$1
fails=0

expect_refused() {  # FLAG_NAME ARGS...
  local name=$1
  shift
  local out rc
  out=$("$natd" "$@" 2>&1)
  rc=$?
  if [ $rc -ne 2 ] || ! grep -q -- "--$name" <<<"$out"; then
    echo "FAIL: natd $* -> status $rc, message: $out"
    fails=$((fails + 1))
  else
    echo "ok: natd $* -> $out"
  fi
}

G=--global4=198.19.0.100
expect_refused "global4 or --global6"
expect_refused global4 --global4=198.19.0
expect_refused global6 --global6=2001:db8::zz
expect_refused preset $G --preset=fullcone
expect_refused udp_preset $G --udp_preset=open
expect_refused ports $G --ports=1024-
expect_refused ports $G --ports=v6plus:256
expect_refused ports $G --ports=2000-1000
expect_refused udp_timeout $G --udp_timeout=60s
expect_refused tcp_transitory_timeout $G --tcp_transitory_timeout=3h
expect_refused workers $G --workers=0
expect_refused "ports/--workers" $G --ports=1024-1030 --workers=8
expect_refused queues $G --queues=0
expect_refused mtu $G --mtu=500
expect_refused pool_buffers $G --pool_buffers=1
expect_refused batch $G --batch=0
expect_refused busy_poll_us $G --busy_poll_us=2000000
expect_refused max_sessions $G --max_sessions=0
expect_refused user $G --user=no-such-user-natd
expect_refused user $G --user=root
expect_refused group $G --user=nobody --group=no-such-group-natd
expect_refused group $G --group=nogroup
expect_refused inside $G --inside=198.18.0.0
expect_refused inside $G --inside=198.18.0.1/24
expect_refused inside $G --inside=198.19.0.0/24
expect_refused pcp $G --pcp=198.18.0.x
expect_refused pcp_mappings $G --pcp=198.18.0.1 --pcp_mappings=0
expect_refused fragment_timeout $G --fragment_timeout=0s
expect_refused fragment_datagrams $G --fragment_datagrams=99999999
expect_refused state_file $G --state_file=/nonexistent-natd-dir/natd.state
expect_refused state_file $G --state_file=/

# abseil's own parser names unknown flags and bad values too.
out=$("$natd" --no_such_flag 2>&1); rc=$?
if [ $rc -eq 0 ] || ! grep -q "no_such_flag" <<<"$out"; then echo "FAIL: unknown flag accepted: $out"; fails=$((fails + 1)); fi
out=$("$natd" "$G" --workers=many 2>&1); rc=$?
if [ $rc -eq 0 ] || ! grep -q "workers" <<<"$out"; then echo "FAIL: bad number accepted: $out"; fails=$((fails + 1)); fi

# --help explains every flag natd defines.
help=$("$natd" --helpfull 2>&1)
for f in device queues workers global4 global6 preset tcp_preset udp_preset icmp_preset ports \
  tcp_established_timeout tcp_transitory_timeout udp_timeout icmp_timeout udp_inbound_refresh max_sessions mtu \
  offload pool_buffers queue_depth batch log_file log_invalid_per_second user group max_sessions_per_host inside fragment_datagrams fragments_held fragment_held_bytes \
  fragment_timeout state_file pcp pcp_mappings pcp_mappings_per_host pcp_max_lifetime run_to_completion \
  io_uring prefault busy_poll_us; do
  grep -q -- "-$f" <<<"$help" || { echo "FAIL: --helpfull does not explain --$f"; fails=$((fails + 1)); }
done
echo "$fails failure(s)"
[ $fails -eq 0 ]
