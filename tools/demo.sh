#!/usr/bin/env bash
# natd's demo in the namespace lab (../shared/NETLAB.md): starts natd on the
# router, then a ping, an HTTP download and a UDP exchange from the lan host
# to the wan host over IPv4 and IPv6, natd's status, and a clean stop.
# Usage: tools/demo.sh NATD_BINARY [natd flags...]
set -euo pipefail
export NATD_BIN=$1
shift
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/tests/lab/lab.sh"

step() { printf '\n== %s\n' "$*"; }

lab_up
step "natd on the router: $NATD_BIN --global4=198.19.0.100 --global6=2001:db8:19::100 $*"
lab_start_natd "$@"

head -c 2000000 /dev/urandom >"$LAB_DIR/file.bin"
(cd "$LAB_DIR" && wan python3 -m http.server --bind :: 8080 >/dev/null 2>&1 &)
wan socat -T 5 UDP4-RECVFROM:5000,fork EXEC:'/bin/cat' &
wan socat -T 5 UDP6-RECVFROM:5000,ipv6only=1,fork EXEC:'/bin/cat' &
sleep 0.5

for fam in 4 6; do
  if [ $fam = 4 ]; then dst=198.19.0.2; url=http://198.19.0.2:8080/file.bin; else
    dst=2001:db8:19::2; url="http://[2001:db8:19::2]:8080/file.bin"; fi
  step "IPv$fam ping lan -> $dst"
  lan ping -$fam -c 3 -i 0.2 "$dst"
  step "IPv$fam HTTP download through natd ($url)"
  lan curl -sS -o "$LAB_DIR/got$fam.bin" -w 'received %{size_download} bytes at %{speed_download} B/s\n' "$url"
  cmp "$LAB_DIR/file.bin" "$LAB_DIR/got$fam.bin" && echo "the file arrived intact (byte for byte)"
  step "IPv$fam UDP echo through natd"
  reply=$(echo "hello over udp$fam" | lan socat -T 2 - "UDP$fam-SENDTO:$([ $fam = 6 ] && echo "[$dst]" || echo "$dst"):5000")
  echo "echo server answered: $reply"
done

step "natd status (a packet to 192.0.2.2 asks for it)"
lab_status

step "stopping natd (SIGTERM)"
if lab_stop_natd; then
  tail -n 3 "$LAB_DIR/natd.out"
else
  echo "natd did not stop cleanly"; cat "$LAB_DIR/natd.out"; exit 1
fi
step "the log ($LAB_DIR/natd.log), first lines"
head -n 8 "$LAB_DIR/natd.log"
