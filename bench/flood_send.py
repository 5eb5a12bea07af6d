#!/usr/bin/python3
"""A bounded packet flood for bench/flood.sh: raw IP packets at a fixed rate
for a fixed time, then one JSON line with what was sent.

  flood_send.py wan --rate PPS --duration S [--avoid-ports P,P..]
      unsolicited traffic from the wan side at natd's global addresses
      (198.19.0.100, 2001:db8:19::100): UDP datagrams and TCP SYNs, half each,
      IPv4 and IPv6 alternately, from random sources in 100.64.0.0/10 and
      2001:db8:ff00::/40 (ranges no lab host uses, so a capture can tell a
      flood packet from anything else) to random destination ports.
  flood_send.py syn --rate PPS --duration S
      a SYN flood from inside: TCP SYNs from 198.18.0.3 (the lan's second
      address; the measured flow runs from .2) with random source ports to
      198.19.0.2, each (source port, destination port) pair new, so each
      asks natd for a new session.
  flood_send.py marker
      one UDP datagram from 203.0.113.1 to 198.18.0.2:9, for the caller to
      route straight to the lan (not through natd): a capture that must
      count let-in flood packets sees it, so the capture is shown to work.

"pps" counts the packets the kernel took; sendto() errors (EPERM when a
firewall in the sending namespace drops them, as bench/flood.sh's control
phase does) count in "errors" and in "tried_pps" only.

Packets are built once, before the clock starts (a pool of distinct random
packets, sent round-robin), so the send loop is only sendto() and the rate
is what the pacing asks for, up to what one Python thread can send (printed
as "pps"). Needs root (raw sockets); run in the sending namespace.
"""
import argparse
import ipaddress
import json
import random
import socket
import struct
import sys
import time

GLOBAL4 = "198.19.0.100"
GLOBAL6 = "2001:db8:19::100"
SRC4_NET = ipaddress.ip_network("100.64.0.0/10")
SRC6_NET = ipaddress.ip_network("2001:db8:ff00::/40")
SYN_SRC = "198.18.0.3"
SYN_DST = "198.19.0.2"
MARKER_SRC, MARKER_DST = "203.0.113.1", "198.18.0.2"
SYN_DPORTS = (9, 13, 17, 19)  # 4 x 64512 distinct pairs: more than the tables we test hold


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def l4(proto: int, sport: int, dport: int, pseudo, seq: int) -> bytes:
    """A TCP SYN or a small UDP datagram with its checksum; pseudo(n) gives
    the family's pseudo-header for n bytes of L4."""
    if proto == socket.IPPROTO_TCP:
        hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
        off = 16
    else:
        payload = b"natd-flood"
        hdr = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        off = 6
    c = csum(pseudo(len(hdr)) + hdr)
    if proto == socket.IPPROTO_UDP and c == 0:
        c = 0xFFFF
    return hdr[:off] + struct.pack("!H", c) + hdr[off + 2:]


def packet4(src: str, dst: str, proto: int, sport: int, dport: int) -> bytes:
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    body = l4(proto, sport, dport, lambda n: s + d + struct.pack("!BBH", 0, proto, n), random.getrandbits(32))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), random.getrandbits(16), 0, 64, proto, 0, s, d)
    return ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + body


def packet6(src: str, dst: str, proto: int, sport: int, dport: int) -> bytes:
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    body = l4(proto, sport, dport, lambda n: s + d + struct.pack("!I3xB", n, proto), random.getrandbits(32))
    return struct.pack("!IHBB16s16s", 6 << 28, len(body), proto, 64, s, d) + body


def rand_addr(net) -> str:
    return str(net[random.randrange(net.num_addresses)])


def build_wan(n: int, avoid: set) -> list:
    pool = []
    for i in range(n):
        proto = socket.IPPROTO_UDP if i % 2 == 0 else socket.IPPROTO_TCP
        sport = random.randint(1024, 65535)
        dport = random.randint(1, 65535)
        while dport in avoid:
            dport = random.randint(1, 65535)
        if (i // 2) % 2 == 0:
            pool.append((4, packet4(rand_addr(SRC4_NET), GLOBAL4, proto, sport, dport), GLOBAL4))
        else:
            pool.append((6, packet6(rand_addr(SRC6_NET), GLOBAL6, proto, sport, dport), GLOBAL6))
    return pool


def build_syn(n: int) -> list:
    pairs = random.sample(range(len(SYN_DPORTS) * 64512), n)
    return [(4, packet4(SYN_SRC, SYN_DST, socket.IPPROTO_TCP, 1024 + p % 64512, SYN_DPORTS[p // 64512]), SYN_DST)
            for p in pairs]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["wan", "syn", "marker"])
    ap.add_argument("--rate", type=int, default=20000, help="packets per second")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds")
    ap.add_argument("--pool", type=int, default=0,
                    help="distinct packets built before sending (default: 65536 for wan; for syn every "
                         "(source port, destination port) pair, 258048, more than the tables we test hold)")
    ap.add_argument("--avoid-ports", default="", help="destination ports the wan flood must not use")
    args = ap.parse_args()
    avoid = {int(p) for p in args.avoid_ports.split(",") if p}
    if args.mode == "marker":
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        s.sendto(packet4(MARKER_SRC, MARKER_DST, socket.IPPROTO_UDP, 9, 9), (MARKER_DST, 0))
        return 0

    if args.mode == "wan":
        pool = build_wan(args.pool or 65536, avoid)
    else:
        pool = build_syn(min(args.pool or len(SYN_DPORTS) * 64512, len(SYN_DPORTS) * 64512))
    socks = {4: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)}
    if args.mode == "wan":
        socks[6] = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for s in socks.values():
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)

    # Pacing: every tick (1 ms), send what the rate allows by now, then sleep.
    # A sender that falls behind (no CPU) skips the backlog rather than burst:
    # the rate printed at the end is what was really sent.
    tick = 0.001
    burst = max(1, int(args.rate * tick * 10))
    sent = errors = 0
    i = 0
    n = len(pool)
    wall_start = time.time()  # for the caller's phase windows
    start = t0 = time.monotonic()
    end = start + args.duration
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - t0) * args.rate)
        if due - sent > burst:  # fell behind: drop the backlog, do not burst
            t0 += (due - sent - burst) / args.rate
            due = sent + burst
        while sent < due:
            fam, pkt, dst = pool[i]
            i = i + 1 if i + 1 < n else 0
            try:
                socks[fam].sendto(pkt, (dst, 0))
            except OSError:
                errors += 1
            sent += 1
        time.sleep(tick)
    secs = time.monotonic() - start
    print(json.dumps({"mode": args.mode, "asked_pps": args.rate, "sent": sent, "errors": errors,
                      "seconds": round(secs, 2), "pps": round((sent - errors) / secs), "tried_pps": round(sent / secs),
                      "start": round(wall_start, 3), "end": round(wall_start + secs, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
