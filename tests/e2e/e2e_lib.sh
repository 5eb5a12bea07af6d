#!/usr/bin/env bash
# Shared helpers of the end-to-end tests (tests/e2e/*_test.sh). A test does:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh" "$@"   # $1: the natd binary
#   e2e_lab_up                         # its own lab (LAB_PREFIX natd-e2e-<pid>), torn down on every exit
#   e2e_start_natd --preset=...        # natd in the router namespace
#   ... traffic with real clients, e2e_check / e2e_fail ...
#   e2e_stop_natd                      # requires exit 0 and "stopped cleanly, all N buffers returned"
#   e2e_pass
#
# On any exit (e2e_fail, a command failing under set -e, SIGTERM from Bazel's
# timeout) the exit trap stops natd and tears the lab down; on failure it then
# prints natd's stdout (status dumps, totals), stderr and log. Traffic stays
# inside the lab namespaces.
set -euo pipefail
# Bazel gives tests a minimal PATH; ip, sysctl, traceroute live in sbin.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Debian's python3 has scapy; a python3 earlier in PATH may not.
PY=/usr/bin/python3

E2E_NAME=$(basename "$0" .sh)
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_T0=$SECONDS

[ $# -ge 1 ] || { echo "usage: $0 path/to/natd" >&2; exit 2; }
NATD_BIN=$(realpath "$1")
[ -x "$NATD_BIN" ] || { echo "$0: natd binary '$1' is not executable" >&2; exit 2; }
export NATD_BIN
[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 2; }

# lab.sh through its runfiles path under Bazel; next to this file otherwise.
if [ -n "${TEST_SRCDIR:-}" ] && [ -f "$TEST_SRCDIR/${TEST_WORKSPACE:-natd}/tests/lab/lab.sh" ]; then
  E2E_LAB_SH=$TEST_SRCDIR/${TEST_WORKSPACE:-natd}/tests/lab/lab.sh
else
  E2E_LAB_SH=$E2E_DIR/../lab/lab.sh
fi
export LAB_PREFIX=natd-e2e-$$
LAB_DIR=$(mktemp -d "${TEST_TMPDIR:-/tmp}/natd-e2e-$E2E_NAME.XXXXXX")
export LAB_DIR
# shellcheck source=../lab/lab.sh
source "$E2E_LAB_SH"

E2E_NATD_RUNS=0

e2e_step() { echo; echo "=== [$((SECONDS - E2E_T0))s] $*"; }
e2e_ok() { echo "  ok: $*"; }
e2e_fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# e2e_check DESCRIPTION COMMAND...: runs the command, fails the test with
# DESCRIPTION if it fails.
e2e_check() {
  local what=$1
  shift
  if "$@"; then e2e_ok "$what"; else e2e_fail "$what (command: $*)"; fi
}

_e2e_dump() {
  local f
  for f in natd.out natd.err natd.log; do
    [ -s "$LAB_DIR/$f" ] || continue
    echo "----- $LAB_DIR/$f (last 150 lines) -----" >&2
    tail -n 150 "$LAB_DIR/$f" >&2
  done
  echo "----- end of natd's output -----" >&2
}

_e2e_exit() {
  local rc=$? natd_rc=
  trap - EXIT
  # Nothing may interrupt the teardown, not even a closed stdout.
  trap '' PIPE TERM INT HUP
  set +e
  if [ "$rc" -ne 0 ] && [ -n "${NATD_PID:-}" ]; then
    LAB_STOP_TIMEOUT=10 lab_stop_natd
    natd_rc=$?
  fi
  lab_down
  if [ "$rc" -ne 0 ]; then
    [ -z "$natd_rc" ] || echo "natd (stopped after the failure) exited with status $natd_rc" >&2
    echo "$E2E_NAME FAILED (status $rc) after $((SECONDS - E2E_T0))s; natd's output follows" >&2
    _e2e_dump
  elif [ -z "${TEST_TMPDIR:-}" ]; then
    rm -rf "$LAB_DIR"  # run by hand and passed; Bazel cleans its own TEST_TMPDIR
  fi
  exit "$rc"
}

# Builds the lab and takes over lab_up's exit trap (ours also calls lab_down).
# ICMP error rate limits are off in every namespace: traceroutes and closed
# ports must answer every probe, deterministically.
e2e_lab_up() {
  e2e_step "lab up (namespaces $LAB_PREFIX-{lan,rtr,wan,far}, files in $LAB_DIR)"
  lab_up || e2e_fail "lab_up"
  trap _e2e_exit EXIT
  # Killed (Bazel's timeout sends SIGTERM, a closed pipe SIGPIPE): exit through
  # the EXIT trap, so the lab is torn down all the same.
  trap 'exit 143' TERM
  trap 'exit 130' INT
  trap 'exit 129' HUP
  trap 'exit 141' PIPE
  local ns
  for ns in "$LAN" "$RTR" "$WAN" "$FAR"; do
    ip netns exec "$ns" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 \
      net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=100000 >/dev/null
  done
  # Check every link and resolve its neighbours first (none of this crosses
  # natd). The very first IPv6 neighbour solicitation on a fresh veth used to
  # be lost (the router dropped it until linkwatch told addrconf the link was
  # up, 0.7-0.9 s after lab_up), and its 1 s retransmission made time-bound
  # probes (traceroute -w) miss their answers; lab_up now waits for that.
  local pair
  for pair in "$LAN 198.18.0.1" "$LAN fd00:18::1" "$RTR 198.19.0.2" "$RTR 2001:db8:19::2" \
    "$WAN 198.19.0.1" "$WAN 2001:db8:19::1" "$WAN 198.51.100.2" "$WAN 2001:db8:51::2"; do
    set -- $pair
    ip netns exec "$1" ping -n -c 1 -W 3 "$2" >/dev/null || e2e_fail "lab: $2 does not answer a ping from $1"
  done
}

e2e_start_natd() {
  E2E_NATD_RUNS=$((E2E_NATD_RUNS + 1))
  echo "  natd run $E2E_NATD_RUNS: --global4=198.19.0.100 --global6=2001:db8:19::100 $*"
  lab_start_natd "$@" || e2e_fail "natd did not start with: $*"
}

# Stops natd (SIGTERM) and requires exit status 0 and the clean-stop line,
# i.e. every packet buffer returned to the pool. Keeps a copy of natd's
# stdout as natd-runN.out for e2e_counter.
e2e_stop_natd() {
  local rc=0
  lab_stop_natd || rc=$?
  cp "$LAB_DIR/natd.out" "$LAB_DIR/natd-run$E2E_NATD_RUNS.out"
  [ "$rc" -eq 0 ] || e2e_fail "natd exited with status $rc (expected 0)"
  grep -qE "^natd: stopped cleanly, all [0-9]+ buffers returned$" "$LAB_DIR/natd.out" ||
    e2e_fail "no clean-stop line from natd (buffers leaked?)"
  e2e_ok "natd exited 0: $(grep -E '^natd: stopped cleanly' "$LAB_DIR/natd.out")"
}

# e2e_counter NAME [FILE]: a counter from natd's totals at exit (natd.out of
# the last run unless FILE), 0 if absent (drop.* lines are printed only when
# non-zero).
e2e_counter() {
  local file=${2:-$LAB_DIR/natd.out}
  awk -v n="$1" '/^natd totals/{t=1} t && $1==n {v=$2} END {print v+0}' "$file"
}

# e2e_status: natd's status dump (lab_status), also kept as status-N.txt (N is
# E2E_STATUS_N: call it in the test's own shell, not in a pipeline or $(...),
# when later code reads that file).
E2E_STATUS_N=0
e2e_status() {
  E2E_STATUS_N=$((E2E_STATUS_N + 1))
  lab_status >"$LAB_DIR/status-$E2E_STATUS_N.txt"
  grep -q "^natd status" "$LAB_DIR/status-$E2E_STATUS_N.txt" || e2e_fail "natd printed no status dump"
  cat "$LAB_DIR/status-$E2E_STATUS_N.txt"
}

# e2e_wait_listen NS tcp|udp PORT: waits (5 s at most) for a listening socket.
e2e_wait_listen() {
  local ns=$1 proto=$2 port=$3 i
  local flag=-t
  [ "$proto" = udp ] && flag=-u
  for i in $(seq 100); do
    if [ -n "$(ip netns exec "$ns" ss -Hln "$flag" "( sport = :$port )" 2>/dev/null)" ]; then return 0; fi
    sleep 0.05
  done
  e2e_fail "nothing listens on $proto port $port in $ns"
}

# e2e_bg NS NAME COMMAND...: runs COMMAND in namespace NS in the background,
# output to $LAB_DIR/NAME.log; its pid in E2E_BG_PID. lab_down kills whatever
# is left in the namespaces.
e2e_bg() {
  local ns=$1 name=$2
  shift 2
  ip netns exec "$ns" "$@" >"$LAB_DIR/$name.log" 2>&1 &
  E2E_BG_PID=$!
}

# --- the servers in wan, and the clients that check them ------------------

# e2e_http_server MB: python3 -m http.server on port 8000 (IPv4 and IPv6) in
# wan, serving $LAB_DIR/www/blob, MB megabytes of random bytes.
e2e_http_server() {
  mkdir -p "$LAB_DIR/www"
  head -c "$(($1 * 1024 * 1024))" /dev/urandom >"$LAB_DIR/www/blob"
  E2E_BLOB_SHA=$(sha256sum "$LAB_DIR/www/blob" | cut -d' ' -f1)
  (cd "$LAB_DIR/www" && exec ip netns exec "$WAN" "$PY" -m http.server --bind :: 8000 >"$LAB_DIR/http.log" 2>&1) &
  e2e_wait_listen "$WAN" tcp 8000
}

# e2e_curl_check 4|6: downloads the blob from lan through natd and compares
# its sha256 with the original.
e2e_curl_check() {
  local fam=$1 url got
  if [ "$fam" = 4 ]; then url=http://198.19.0.2:8000/blob; else url="http://[2001:db8:19::2]:8000/blob"; fi
  rm -f "$LAB_DIR/got.bin"
  if ! lan curl -gsS --max-time 30 -o "$LAB_DIR/got.bin" -w '%{size_download} bytes at %{speed_download} B/s\n' \
    "$url" >"$LAB_DIR/curl.txt" 2>&1; then
    cat "$LAB_DIR/curl.txt" >&2
    e2e_fail "IPv$fam TCP: curl $url through natd failed"
  fi
  got=$(sha256sum "$LAB_DIR/got.bin" | cut -d' ' -f1)
  [ "$got" = "$E2E_BLOB_SHA" ] || e2e_fail "IPv$fam TCP: sha256 of the download $got != $E2E_BLOB_SHA"
  e2e_ok "IPv$fam TCP: curl $url: $(cat "$LAB_DIR/curl.txt"), sha256 equal"
}

# e2e_udp_echo_servers: socat UDP echo servers in wan on 198.19.0.2:7000 and
# [2001:db8:19::2]:7000 (one child per client, gone after 5 s idle).
e2e_udp_echo_servers() {
  e2e_bg "$WAN" udpecho4 socat -T 5 UDP4-LISTEN:7000,bind=198.19.0.2,reuseaddr,fork PIPE
  e2e_bg "$WAN" udpecho6 socat -T 5 "UDP6-LISTEN:7000,bind=[2001:db8:19::2],reuseaddr,fork" PIPE
  e2e_wait_listen "$WAN" udp 7000
}

# e2e_udp_echo_check 4|6: a socat client in lan sends a datagram with a
# random token through natd and must get the same bytes back.
e2e_udp_echo_check() {
  local fam=$1 dst token got
  if [ "$fam" = 4 ]; then dst=198.19.0.2:7000; else dst="[2001:db8:19::2]:7000"; fi
  token="natd-e2e-udp$fam-$RANDOM$RANDOM"
  got=$(printf '%s' "$token" | lan timeout 10 socat -t 1 - "UDP$fam:$dst" 2>&1 || true)
  [ "$got" = "$token" ] || e2e_fail "IPv$fam UDP echo via $dst: sent '$token', got '$got'"
  e2e_ok "IPv$fam UDP echo via $dst: '$token' came back"
}

# e2e_ping_check 4|6 DST [COUNT]: every echo must be answered.
e2e_ping_check() {
  local fam=$1 dst=$2 n=${3:-3} out
  out=$(lan ping -"$fam" -n -c "$n" -i 0.2 -W 2 "$dst" 2>&1) || {
    echo "$out" >&2
    e2e_fail "IPv$fam ping $dst through natd failed"
  }
  grep -q "^$n packets transmitted, $n received" <<<"$out" || {
    echo "$out" >&2
    e2e_fail "IPv$fam ping $dst: not all $n echoes answered"
  }
  e2e_ok "IPv$fam ping $dst: $n of $n answered"
}

e2e_pass() {
  echo
  echo "PASS: $E2E_NAME in $((SECONDS - E2E_T0))s"
}
