#!/usr/bin/env bash
# The namespace lab (../shared/NETLAB.md), as a library every end-to-end
# test, the demo and the lab benchmark source:
#
#   lan (198.18.0.2, fd00:18::2) ── rtr [natd0 TUN: natd] ── wan (198.19.0.2/.3, 2001:db8:19::2/::3) ── far
#
# natd's global addresses 198.19.0.100 / 2001:db8:19::100 sit on no
# interface: the router sends everything from rtr-lan, and everything for
# the global addresses, into natd's TUN; natd writes translations back into
# it and the main table routes them on. Unreachable routes of high metric
# make the lab fail closed: if natd is not running, nothing leaves
# untranslated.
#
# Use:  source tests/lab/lab.sh; lab_up; lab_start_natd --preset=full-cone; ...; lab_down
# lab_up installs an EXIT trap that tears everything down.

LAB_PREFIX=${LAB_PREFIX:-natd-$$}
LAN=$LAB_PREFIX-lan
RTR=$LAB_PREFIX-rtr
WAN=$LAB_PREFIX-wan
FAR=$LAB_PREFIX-far
LAB_DIR=${LAB_DIR:-$(mktemp -d /tmp/natd-lab.XXXXXX)}
NATD_PID=
NATD_BIN=${NATD_BIN:-}

lan() { ip netns exec "$LAN" "$@"; }
rtr() { ip netns exec "$RTR" "$@"; }
wan() { ip netns exec "$WAN" "$@"; }
far() { ip netns exec "$FAR" "$@"; }

lab_log() { echo "lab: $*" >&2; }

# Every step may fail (a half-built lab, natd already gone): under set -e the
# teardown must still run to the end, so nothing here may stop it.
lab_down() {
  lab_stop_natd || true
  local ns pids
  for ns in "$LAN" "$RTR" "$WAN" "$FAR"; do
    # Kill anything a test left running in the namespace.
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then kill $pids 2>/dev/null || true; fi
    ip netns del "$ns" 2>/dev/null || true
  done
  return 0
}

lab_up() {
  trap 'lab_down' EXIT
  for ns in "$LAN" "$RTR" "$WAN" "$FAR"; do ip netns add "$ns" || return 1; done
  for ns in "$LAN" "$RTR" "$WAN" "$FAR"; do ip -n "$ns" link set lo up; done
  # No duplicate address detection in the lab, for the link-local addresses
  # too (the others are added nodad): set before the links exist, since an
  # interface takes the namespace's defaults when it is created. While a
  # link-local address is tentative (1-2 s after its link comes up), the
  # kernel sends no neighbour solicitation for a packet it forwards out of
  # that link (ndisc_send_ns needs a link-local source when the packet's is
  # not on the link, and silently returns): the packet waits in the
  # incomplete neighbour entry for the 1 s retransmission, or the next. So
  # the router's first answer to fd00:18::3 (not yet a neighbour) left
  # rtr-lan 1-2 s after natd wrote it.
  for ns in "$LAN" "$RTR" "$WAN" "$FAR"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  done
  ip link add lan0 netns "$LAN" type veth peer name rtr-lan netns "$RTR"
  ip link add rtr-wan netns "$RTR" type veth peer name wan0 netns "$WAN"
  ip link add wan-far netns "$WAN" type veth peer name far0 netns "$FAR"

  ip -n "$LAN" addr add 198.18.0.2/24 dev lan0
  ip -n "$LAN" addr add 198.18.0.3/24 dev lan0
  ip -n "$LAN" addr add fd00:18::2/64 dev lan0 nodad
  # Second addresses are deprecated (preferred_lft 0) so that the kernel
  # picks the first as source; tests bind to them explicitly.
  ip -n "$LAN" addr add fd00:18::3/64 dev lan0 nodad preferred_lft 0
  ip -n "$LAN" link set lan0 up
  ip -n "$LAN" route add default via 198.18.0.1
  ip -n "$LAN" -6 route add default via fd00:18::1

  ip -n "$RTR" addr add 198.18.0.1/24 dev rtr-lan
  ip -n "$RTR" addr add fd00:18::1/64 dev rtr-lan nodad
  ip -n "$RTR" addr add 198.19.0.1/24 dev rtr-wan
  ip -n "$RTR" addr add 2001:db8:19::1/64 dev rtr-wan nodad
  ip -n "$RTR" link set rtr-lan up
  ip -n "$RTR" link set rtr-wan up
  rtr sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv4.conf.rtr-lan.rp_filter=0 net.ipv4.conf.rtr-wan.rp_filter=0
  # The router's own ICMP errors about translated packets (Time Exceeded when
  # a TTL runs out on the way from natd0 to rtr-wan) go to the global address,
  # so into natd, which writes them back translated, still from the router's
  # address (198.18.0.1): IPv4 drops a packet arriving with a local source as
  # a martian unless accept_local is on (all OR the device's).
  rtr sysctl -qw net.ipv4.conf.all.accept_local=1 net.ipv4.conf.default.accept_local=1
  ip -n "$RTR" route add 198.51.100.0/24 via 198.19.0.2
  ip -n "$RTR" -6 route add 2001:db8:51::/64 via 2001:db8:19::2
  # Policy routing into natd's TUN, failing closed while natd0 is absent.
  ip -n "$RTR" rule add iif rtr-lan lookup 100
  ip -n "$RTR" -6 rule add iif rtr-lan lookup 100
  ip -n "$RTR" route add unreachable default metric 4000000000 table 100
  ip -n "$RTR" -6 route add unreachable default metric 4000000000 table 100
  ip -n "$RTR" route add unreachable 198.19.0.100/32 metric 4000000000
  ip -n "$RTR" -6 route add unreachable 2001:db8:19::100/128 metric 4000000000

  ip -n "$WAN" addr add 198.19.0.2/24 dev wan0
  ip -n "$WAN" addr add 198.19.0.3/24 dev wan0
  ip -n "$WAN" addr add 2001:db8:19::2/64 dev wan0 nodad
  ip -n "$WAN" addr add 2001:db8:19::3/64 dev wan0 nodad preferred_lft 0
  ip -n "$WAN" addr add 198.51.100.1/24 dev wan-far
  ip -n "$WAN" addr add 2001:db8:51::1/64 dev wan-far nodad
  ip -n "$WAN" link set wan0 up
  ip -n "$WAN" link set wan-far up
  wan sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  ip -n "$WAN" route add 198.19.0.100/32 via 198.19.0.1
  ip -n "$WAN" -6 route add 2001:db8:19::100/128 via 2001:db8:19::1

  ip -n "$FAR" addr add 198.51.100.2/24 dev far0
  ip -n "$FAR" addr add 2001:db8:51::2/64 dev far0 nodad
  ip -n "$FAR" link set far0 up
  ip -n "$FAR" route add default via 198.51.100.1
  ip -n "$FAR" -6 route add default via 2001:db8:51::1
  lab_wait_ready
}

# Waits (LAB_READY_TIMEOUT seconds, default 5) until every lab link is up as
# the kernel's IPv6 sees it, with its link-local address, and no IPv6 address
# is tentative.
# - A veth's carrier change reaches addrconf through linkwatch, which runs at
#   most once a second for the whole machine: measured here, rtr-lan's
#   operstate stayed "down" for 0.73-0.87 s after lab_up, and until then
#   the router dropped lan's neighbour solicitations for fd00:18::1
#   (Ip6InNoRoutes), so the first one went unanswered.
# - No address should be tentative (DAD is off, see lab_up), but if a kernel
#   still runs DAD, traffic must not start before it ends.
lab_wait_ready() {
  local i ns left links
  for i in $(seq $((${LAB_READY_TIMEOUT:-5} * 20))); do
    left=
    for ns in "$LAN" "$RTR" "$WAN" "$FAR"; do
      links=$(ip -n "$ns" -o link show type veth | wc -l)
      # Each veth's operstate (set by linkwatch), and its link-local address
      # (the source of the router's solicitations for the packets it
      # forwards), which addrconf adds when it sees the link up.
      [ "$(ip -n "$ns" -o link show type veth up | grep -c ' state UP ')" = "$links" ] || left="$left $ns:link-down"
      [ "$(ip -n "$ns" -6 -o addr show scope link | grep -vc ': lo ')" -ge "$links" ] || left="$left $ns:no-link-local"
      [ -z "$(ip -n "$ns" -6 addr show tentative)" ] || left="$left $ns:tentative"
    done
    [ -n "$left" ] || return 0
    sleep 0.05
  done
  lab_log "lab not ready after ${LAB_READY_TIMEOUT:-5}s:$left"
  return 1
}

# Starts natd in the router namespace with the lab's addresses (the global
# ones, and the lan's as the inside networks) and the given extra flags;
# waits until its TUN is up and routed.
lab_start_natd() {
  local bin=${NATD_BIN:?set NATD_BIN to the natd binary}
  # Emptied here, not only by the redirection below: that one happens in the
  # background child, which may not have run yet when the loop first looks,
  # and a previous natd's "natd: ready" would pass for this one's.
  : >"$LAB_DIR/natd.out"
  : >"$LAB_DIR/natd.err"
  # Not through rtr(): $! must be natd itself (ip netns exec execs it).
  ip netns exec "$RTR" "$bin" --device=natd0 --global4=198.19.0.100 --global6=2001:db8:19::100 \
    --inside=198.18.0.0/24,fd00:18::/64 --log_file="$LAB_DIR/natd.log" "$@" >"$LAB_DIR/natd.out" 2>"$LAB_DIR/natd.err" &
  NATD_PID=$!
  # Usually ready in ~0.2 s; creating the TUN takes the kernel's global RTNL
  # lock, which other labs' namespace teardowns can hold for seconds.
  local i limit=${LAB_START_TIMEOUT:-20} ready=
  for i in $(seq $((limit * 20))); do
    if grep -q "natd: ready" "$LAB_DIR/natd.out" 2>/dev/null; then ready=1; break; fi
    if ! kill -0 "$NATD_PID" 2>/dev/null; then
      lab_log "natd exited at start:"; cat "$LAB_DIR/natd.err" >&2; NATD_PID=; return 1
    fi
    sleep 0.05
  done
  if [ -z "$ready" ]; then
    lab_log "natd not ready after ${limit}s; its threads wait in:" \
      "$(for t in /proc/"$NATD_PID"/task/*; do printf '%s ' "$(cat "$t/wchan" 2>/dev/null)"; done)"
    lab_stop_natd || true
    return 1
  fi
  ip -n "$RTR" route replace default dev natd0 table 100
  ip -n "$RTR" -6 route replace default dev natd0 table 100
  ip -n "$RTR" route replace 198.19.0.100/32 dev natd0
  ip -n "$RTR" -6 route replace 2001:db8:19::100/128 dev natd0
}

# SIGTERM, wait, and return natd's exit status (0 when it stopped cleanly).
# A natd that does not exit within LAB_STOP_TIMEOUT seconds (default 30) is
# killed (SIGKILL) and the status is 137, so a hung natd cannot hang a test.
lab_stop_natd() {
  [ -n "$NATD_PID" ] || return 0
  local pid=$NATD_PID rc=0 state=
  local deadline=$((SECONDS + ${LAB_STOP_TIMEOUT:-30}))
  NATD_PID=
  kill -TERM "$pid" 2>/dev/null || true
  # natd is our child: it stays a zombie (state Z) until the wait below.
  while read -r _ _ state _ 2>/dev/null <"/proc/$pid/stat" && [ "$state" != Z ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      lab_log "natd (pid $pid) did not exit within ${LAB_STOP_TIMEOUT:-30}s of SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.05
  done
  wait "$pid" || rc=$?
  return $rc
}

# Asks natd for its status (a packet to 192.0.2.2) and prints it.
lab_status() {
  local before i
  before=$(grep -c "^natd status" "$LAB_DIR/natd.out" || true)
  # Any packet to 192.0.2.2 will do; natd answers on stdout, not with a reply,
  # so send one datagram rather than wait for an echo reply that never comes.
  lan bash -c 'echo status >/dev/udp/192.0.2.2/9' 2>/dev/null || true
  for i in $(seq 40); do
    [ "$(grep -c "^natd status" "$LAB_DIR/natd.out" || true)" -gt "$before" ] && break
    sleep 0.05
  done
  sleep 0.1
  awk -v n="$before" '/^natd status/{c++} c>n' "$LAB_DIR/natd.out"
}
