#!/usr/bin/python3
"""Malformed and untranslatable packets for natd, sent with scapy on a link
into the router (run inside the lan or wan namespace).

  malformed.py --side lan|wan --router-mac MAC structured [--repeat N]
      Sends, N times each (with varying ports/ids), a fixed list of cases.
      Each case names the drop reason natd must count for it, or "kernel"
      (the router's kernel drops it before natd: bad IP header checksum,
      bad IHL, bad total length, ...) or "forward" (valid, natd translates).
      Prints "expect drop.<reason> <count>" for every reason natd must count.
  malformed.py --side lan|wan --router-mac MAC fuzz [--count N] [--seed S]
      Sends N pseudo-random (scapy fuzz) packets, reproducibly: nothing is
      expected except that natd survives them.

From lan the packets go from 198.18.0.2 / fd00:18::2 to the wan host
(198.19.0.2 / 2001:db8:19::2); from wan they go from the wan host to natd's
global addresses (198.19.0.100 / 2001:db8:19::100).
"""
import argparse
import collections
import random
import sys

from scapy.all import (ICMP, IP, TCP, UDP, Ether, ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6PacketTooBig,
                       ICMPv6TimeExceeded, IPOption_RR, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, Raw, conf,
                       fuzz, sendp)

LAN = dict(src4="198.18.0.2", dst4="198.19.0.2", src6="fd00:18::2", dst6="2001:db8:19::2", iface="lan0")
WAN = dict(src4="198.19.0.2", dst4="198.19.0.100", src6="2001:db8:19::2", dst6="2001:db8:19::100", iface="wan0")
G4, G6 = "198.19.0.100", "2001:db8:19::100"


def raw_ip4(src, dst, proto, payload, **kw):
    """An IPv4 packet whose payload scapy does not touch (no L4 fix-ups)."""
    return IP(src=src, dst=dst, proto=proto, **kw) / Raw(payload)


def lan_cases(a, i):
    s4, d4, s6, d6 = a["src4"], a["dst4"], a["src6"], a["dst6"]
    sp = 20000 + i
    return [
        # --- the router's kernel drops these before natd sees them
        ("kernel", "IPv4 bad header checksum", IP(src=s4, dst=d4, chksum=0x1234) / UDP(sport=sp, dport=7)),
        ("kernel", "IPv4 IHL 4", IP(src=s4, dst=d4, ihl=4) / UDP(sport=sp, dport=7)),
        ("kernel", "IPv4 total length beyond the frame", IP(src=s4, dst=d4, len=400) / UDP(sport=sp, dport=7)),
        ("kernel", "IPv6 payload length beyond the frame", IPv6(src=s6, dst=d6, plen=400) / UDP(sport=sp, dport=7)),
        # --- valid, if unusual: natd translates them
        ("forward", "IPv4 with an IP option (record route)",
         IP(src=s4, dst=d4, options=[IPOption_RR()]) / UDP(sport=sp, dport=9) / b"opt"),
        ("forward", "UDP with a bad checksum", IP(src=s4, dst=d4) / UDP(sport=sp, dport=9, chksum=0x1234) / b"x"),
        ("forward", "TCP SYN with a bad checksum", IP(src=s4, dst=d4) / TCP(sport=sp, dport=9, flags="S", chksum=1)),
        # A datagram's first fragment, then a later one of the same datagram.
        ("forward", "IPv4 first fragment (MF)", IP(src=s4, dst=d4, flags="MF", id=i) / UDP(sport=sp, dport=7) / (b"f" * 32)),
        ("forward", "IPv4 later fragment, after its first", raw_ip4(s4, d4, 17, b"g" * 24, frag=4, id=i)),
        ("forward", "IPv6 first fragment (M)", IPv6(src=s6, dst=d6) / IPv6ExtHdrFragment(m=1, id=i) / UDP(sport=sp, dport=7) / (b"f" * 32)),
        ("forward", "IPv6 later fragment, after its first", IPv6(src=s6, dst=d6) / IPv6ExtHdrFragment(offset=4, id=i, nh=17) / Raw(b"g" * 24)),
        # --- natd drops these, each for its reason
        ("unsupported-protocol", "IPv4 protocol 253", raw_ip4(s4, d4, 253, b"experimental")),
        ("unsupported-protocol", "IPv4 SCTP", raw_ip4(s4, d4, 132, b"\x00" * 16)),
        ("unsupported-protocol", "IPv4 carrying ICMPv6", raw_ip4(s4, d4, 58, b"\x80\x00" + b"\x00" * 10)),
        ("unsupported-protocol", "IPv6 next header 253", IPv6(src=s6, dst=d6, nh=253) / Raw(b"experimental")),
        ("unsupported-protocol", "IPv6 carrying ICMPv4", IPv6(src=s6, dst=d6, nh=1) / Raw(b"\x08\x00" + b"\x00" * 10)),
        ("bad-udp-length", "UDP length 0", IP(src=s4, dst=d4) / UDP(sport=sp, dport=7, len=0) / b"zero"),
        ("bad-udp-length", "UDP length 5", IP(src=s4, dst=d4) / UDP(sport=sp, dport=7, len=5) / b"five"),
        ("bad-udp-length", "UDP length beyond the packet", IP(src=s4, dst=d4) / UDP(sport=sp, dport=7, len=300) / b"short"),
        ("bad-udp-length", "IPv6 UDP length 0", IPv6(src=s6, dst=d6) / UDP(sport=sp, dport=7, len=0) / b"zero"),
        ("bad-udp-length", "IPv6 UDP length beyond the packet", IPv6(src=s6, dst=d6) / UDP(sport=sp, dport=7, len=300) / b"x"),
        ("truncated-l4-header", "IPv4 TCP header of 10 bytes", raw_ip4(s4, d4, 6, b"\x4e\x20\x00\x07" + b"\x00" * 6)),
        ("truncated-l4-header", "IPv4 UDP header of 4 bytes", raw_ip4(s4, d4, 17, b"\x4e\x20\x00\x07")),
        ("truncated-l4-header", "IPv4 ICMP of 4 bytes", raw_ip4(s4, d4, 1, b"\x08\x00\x00\x00")),
        ("truncated-l4-header", "IPv6 TCP header of 12 bytes", IPv6(src=s6, dst=d6, nh=6) / Raw(b"\x4e\x20\x00\x07" + b"\x00" * 8)),
        ("bad-tcp-data-offset", "TCP data offset 2 (8 bytes)", IP(src=s4, dst=d4) / TCP(sport=sp, dport=7, dataofs=2)),
        ("bad-tcp-data-offset", "TCP data offset 15, no options", IP(src=s4, dst=d4) / TCP(sport=sp, dport=7, dataofs=15)),
        ("bad-tcp-data-offset", "IPv6 TCP data offset 3", IPv6(src=s6, dst=d6) / TCP(sport=sp, dport=7, dataofs=3)),
        ("tcp-no-session", "TCP RST without a session", IP(src=s4, dst=d4) / TCP(sport=sp, dport=7, flags="R")),
        ("unsupported-icmp-type", "ICMP timestamp request", IP(src=s4, dst=d4) / ICMP(type=13, id=i)),
        ("unsupported-icmp-type", "ICMP type 42", IP(src=s4, dst=d4) / ICMP(type=42)),
        ("unsupported-icmp-type", "ICMPv6 type 200", IPv6(src=s6, dst=d6, nh=58) / Raw(b"\xc8\x00\x00\x00\x00\x00\x00\x00")),
        ("icmp-error-no-session", "ICMP port unreachable from inside, about nothing natd delivered",
         IP(src=s4, dst=d4) / ICMP(type=3, code=3) / IP(src=d4, dst=s4) / UDP(sport=53, dport=sp)),
        ("icmp-error-no-session", "ICMPv6 port unreachable from inside, about nothing natd delivered",
         IPv6(src=s6, dst=d6) / ICMPv6DestUnreach(code=4) / IPv6(src=d6, dst=s6) / UDP(sport=53, dport=sp)),
        ("too-many-ipv6-extension-headers", "9 destination options headers",
         IPv6(src=s6, dst=d6) / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
         IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
         UDP(sport=sp, dport=7)),
        ("truncated-ipv6-extension-header", "destination options claiming 48 bytes, 6 there",
         IPv6(src=s6, dst=d6, nh=60) / Raw(b"\x11\x05\x01\x02\x00\x00")),
        ("truncated-ipv6-extension-header", "destination options header of 4 bytes",
         IPv6(src=s6, dst=d6, nh=60) / Raw(b"\x11\x00\x01\x00")),
    ]


def wan_cases(a, i):
    s4, s6 = a["src4"], a["src6"]
    ep = 40000 + i  # external ports nobody has a mapping on
    quote4 = IP(src=G4, dst=s4) / UDP(sport=ep, dport=53)
    quote6 = IPv6(src=G6, dst=s6) / UDP(sport=ep, dport=53)
    return [
        ("inbound-no-mapping", "UDP to an unmapped port", IP(src=s4, dst=G4) / UDP(sport=53, dport=ep) / b"hi"),
        ("inbound-no-mapping", "TCP SYN to an unmapped port", IP(src=s4, dst=G4) / TCP(sport=80, dport=ep, flags="S")),
        ("inbound-no-mapping", "echo reply for an unknown id", IP(src=s4, dst=G4) / ICMP(type=0, id=ep)),
        ("inbound-no-mapping", "IPv6 UDP to an unmapped port", IPv6(src=s6, dst=G6) / UDP(sport=53, dport=ep) / b"hi"),
        ("inbound-no-mapping", "IPv6 echo reply for an unknown id", IPv6(src=s6, dst=G6) / ICMPv6EchoReply(id=ep)),
        ("source-is-global-address", "IPv4 from the global address", IP(src=G4, dst=G4) / UDP(sport=ep, dport=ep)),
        ("source-is-global-address", "IPv6 from the global address", IPv6(src=G6, dst=G6) / UDP(sport=ep, dport=ep)),
        ("inbound-no-mapping", "IPv4 first fragment to an unmapped port", IP(src=s4, dst=G4, flags="MF", id=i) / UDP(sport=53, dport=ep) / (b"f" * 32)),
        # Held for a first fragment that never comes: dropped when natd stops.
        ("fragment-timeout", "IPv6 later fragment alone", IPv6(src=s6, dst=G6) / IPv6ExtHdrFragment(offset=8, id=i, nh=17) / Raw(b"g" * 24)),
        ("unsupported-protocol", "IPv4 protocol 253 to the global address", raw_ip4(s4, G4, 253, b"experimental")),
        ("unsupported-protocol", "IPv6 next header 253 to the global address", IPv6(src=s6, dst=G6, nh=253) / Raw(b"exp")),
        ("bad-udp-length", "UDP length 3 to the global address", IP(src=s4, dst=G4) / UDP(sport=53, dport=ep, len=3)),
        ("bad-tcp-data-offset", "TCP data offset 1 to the global address", IP(src=s4, dst=G4) / TCP(sport=80, dport=ep, dataofs=1)),
        ("unsupported-icmp-type", "ICMP address mask request", IP(src=s4, dst=G4) / ICMP(type=17)),
        ("truncated-icmp-error-quote", "port unreachable quoting nothing", IP(src=s4, dst=G4) / ICMP(type=3, code=3)),
        ("truncated-icmp-error-quote", "port unreachable quoting an IP header + 4 bytes",
         IP(src=s4, dst=G4) / ICMP(type=3, code=3) / Raw(bytes(quote4)[:24])),
        ("truncated-icmp-error-quote", "time exceeded quoting 12 bytes", IP(src=s4, dst=G4) / ICMP(type=11) / Raw(bytes(quote4)[:12])),
        ("truncated-icmp-error-quote", "ICMPv6 unreachable quoting 30 bytes",
         IPv6(src=s6, dst=G6) / ICMPv6DestUnreach(code=4) / Raw(bytes(quote6)[:30])),
        ("bad-icmp-error-quote", "ICMPv4 error quoting an IPv6 packet",
         IP(src=s4, dst=G4) / ICMP(type=3, code=3) / IPv6(src=G6, dst=s6) / UDP(sport=ep, dport=53)),
        ("bad-icmp-error-quote", "ICMP error quoting an ICMP error",
         IP(src=s4, dst=G4) / ICMP(type=3, code=3) / IP(src=G4, dst=s4) / ICMP(type=3, code=1) / quote4),
        ("bad-icmp-error-quote", "ICMP error quoting a header with IHL 3",
         IP(src=s4, dst=G4) / ICMP(type=11) / Raw(b"\x43" + bytes(quote4)[1:])),
        ("bad-icmp-error-quote", "ICMPv6 error quoting an IPv4 packet",
         IPv6(src=s6, dst=G6) / ICMPv6TimeExceeded() / IP(src=G4, dst=s4) / UDP(sport=ep, dport=53)),
        ("icmp-error-no-session", "port unreachable about a session that never was",
         IP(src=s4, dst=G4) / ICMP(type=3, code=3) / quote4),
        ("icmp-error-no-session", "time exceeded quoting an inside-looking source",
         IP(src=s4, dst=G4) / ICMP(type=11) / IP(src="198.18.0.2", dst=s4) / UDP(sport=ep, dport=53)),
        ("icmp-error-no-session", "packet too big about a session that never was",
         IPv6(src=s6, dst=G6) / ICMPv6PacketTooBig(mtu=1280) / quote6),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("structured", "fuzz"))
    ap.add_argument("--side", choices=("lan", "wan"), required=True)
    ap.add_argument("--router-mac", required=True)
    ap.add_argument("--repeat", type=int, default=6)
    ap.add_argument("--count", type=int, default=150)
    ap.add_argument("--seed", type=int, default=4787)
    args = ap.parse_args()
    a = LAN if args.side == "lan" else WAN
    conf.verb = 0
    eth = Ether(dst=args.router_mac)
    frames = []
    if args.mode == "structured":
        expected = collections.Counter()
        names = []
        for i in range(args.repeat):
            cases = lan_cases(a, i) if args.side == "lan" else wan_cases(a, i)
            for reason, what, pkt in cases:
                frames.append(eth / pkt)
                if reason not in ("kernel", "forward"):
                    expected[reason] += 1
                if i == 0:
                    names.append(f"  {reason:34s} {what}")
        print(f"{args.side}: {len(frames)} packets, {len(names)} cases x {args.repeat}:")
        print("\n".join(names))
        sendp(frames, iface=a["iface"], verbose=False)
        for reason, n in sorted(expected.items()):
            print(f"expect drop.{reason} {n}")
    else:
        random.seed(args.seed)
        conf.RandomSeed = args.seed
        templates = [
            lambda: IP(src=a["src4"], dst=a["dst4"]) / fuzz(UDP()),
            lambda: IP(src=a["src4"], dst=a["dst4"]) / fuzz(TCP()),
            lambda: IP(src=a["src4"], dst=a["dst4"]) / fuzz(ICMP()) / fuzz(IP(src=G4)) / fuzz(UDP()),
            lambda: fuzz(IP(src=a["src4"], dst=a["dst4"], version=4, ihl=5)) / Raw(random.randbytes(random.randrange(0, 60))),
            lambda: IPv6(src=a["src6"], dst=a["dst6"]) / fuzz(UDP()),
            lambda: IPv6(src=a["src6"], dst=a["dst6"], nh=random.randrange(256)) / Raw(random.randbytes(random.randrange(0, 60))),
            lambda: IPv6(src=a["src6"], dst=a["dst6"]) / fuzz(ICMPv6DestUnreach()) / fuzz(IPv6(src=G6)) / fuzz(TCP()),
        ]
        for k in range(args.count):
            frames.append(eth / templates[k % len(templates)]())
        sendp(frames, iface=a["iface"], verbose=False)
        print(f"{args.side}: {len(frames)} fuzzed packets sent (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
