#!/usr/bin/python3
"""Checks a capture taken on the lab's wan0 (tests/e2e/capture_test.sh).

Fails (exit 1) when
  - any IPv4/IPv6 header in any packet, including the header quoted inside an
    ICMP/ICMPv6 error, carries an inside address (198.18.0.0/24, fd00:18::/64);
  - a packet that came from the router (Ethernet source = the router's
    rtr-wan MAC), other than the router's own neighbour discovery, has a
    source other than natd's global address (198.19.0.100, 2001:db8:19::100);
  - an ICMP error sent to the global address does not quote a packet from it,
    or quotes nothing parseable;
  - the capture lacks what the traffic must have produced (--expect), so that
    an empty or wrong capture cannot pass.

--expect takes KEY=MIN pairs, KEY one of out4.icmp out4.tcp out4.udp out6.icmp
out6.tcp out6.udp err4 err6 (packets from the router of that family and
protocol; ICMP errors to the global address).

--self-test runs the checker over synthetic packets, clean and faulty, and
fails unless it accepts the former and catches each of the latter.
"""
import argparse
import ipaddress
import sys

from scapy.all import (ICMP, IP, TCP, UDP, Ether, ICMPv6ND_NS, ICMPv6PacketTooBig, ICMPv6TimeExceeded, IPerror,
                       IPerror6, IPv6, PcapReader)

INSIDE = [ipaddress.ip_network("198.18.0.0/24"), ipaddress.ip_network("fd00:18::/64")]
GLOBAL4 = "198.19.0.100"
GLOBAL6 = "2001:db8:19::100"
ICMP4_ERRORS = {3, 4, 5, 11, 12}
ICMP6_ERRORS = {1, 2, 3, 4}
ND_TYPES = {130, 131, 132, 133, 134, 135, 136, 137, 143}


def icmp6_of(pkt):
    """The outer ICMPv6 message of an IPv6 packet (after any extension headers), or None."""
    layer = pkt[IPv6].payload
    while layer:
        if isinstance(layer, IPerror6):
            return None
        if type(layer).__name__.startswith("ICMPv6") and hasattr(layer, "type"):
            return layer
        layer = layer.payload
    return None


def inside(addr):
    try:
        a = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(a in n for n in INSIDE)


def check(packets, router_mac):
    """Returns (counts, violations) for an iterable of packets."""
    router_mac = router_mac.lower()
    counts = {k: 0 for k in ("out4.icmp", "out4.tcp", "out4.udp", "out6.icmp", "out6.tcp", "out6.udp", "err4", "err6")}
    violations = []

    def violation(n, pkt, why):
        violations.append(f"packet #{n}: {why}: {pkt.summary()}")

    for n, pkt in enumerate(packets, 1):
        # Every IP header in the packet, the quoted ones included.
        layer = pkt
        while layer:
            if isinstance(layer, (IP, IPerror, IPv6, IPerror6)):
                for field in ("src", "dst"):
                    if inside(getattr(layer, field)):
                        violation(n, pkt, f"inside address {getattr(layer, field)} in {layer.name}.{field}")
            layer = layer.payload
        if Ether not in pkt:
            continue
        from_router = pkt[Ether].src.lower() == router_mac
        to_router = pkt[Ether].dst.lower() == router_mac
        if IP in pkt:
            ip = pkt[IP]
            if from_router:
                if ip.src != GLOBAL4:
                    violation(n, pkt, f"from the router with source {ip.src}, not {GLOBAL4}")
                elif ICMP in pkt and pkt[ICMP].type in ICMP4_ERRORS:
                    violation(n, pkt, "an ICMP error left through natd (outbound errors are not translated)")
                elif ICMP in pkt:
                    counts["out4.icmp"] += 1
                elif TCP in pkt:
                    counts["out4.tcp"] += 1
                elif UDP in pkt:
                    counts["out4.udp"] += 1
            elif to_router and ip.dst == GLOBAL4 and ICMP in pkt and pkt[ICMP].type in ICMP4_ERRORS:
                if IPerror not in pkt:
                    violation(n, pkt, "ICMP error to the global address with an unparseable quote")
                elif pkt[IPerror].src != GLOBAL4:
                    violation(n, pkt, f"ICMP error to {GLOBAL4} quoting a packet from {pkt[IPerror].src}")
                else:
                    counts["err4"] += 1
        elif IPv6 in pkt:
            ip6 = pkt[IPv6]
            icmp6 = icmp6_of(pkt)
            src = ipaddress.ip_address(ip6.src)
            if from_router:
                if icmp6 is not None and icmp6.type in ND_TYPES:
                    continue  # the router's own neighbour discovery / MLD
                if src.is_link_local and ipaddress.ip_address(ip6.dst).is_multicast:
                    continue
                if ip6.src != ipaddress.ip_address(GLOBAL6).compressed:
                    violation(n, pkt, f"from the router with source {ip6.src}, not {GLOBAL6}")
                elif icmp6 is not None and icmp6.type in ICMP6_ERRORS:
                    violation(n, pkt, "an ICMPv6 error left through natd (outbound errors are not translated)")
                elif icmp6 is not None:
                    counts["out6.icmp"] += 1
                elif TCP in pkt:
                    counts["out6.tcp"] += 1
                elif UDP in pkt:
                    counts["out6.udp"] += 1
            elif to_router and ip6.dst == GLOBAL6 and icmp6 is not None and icmp6.type in ICMP6_ERRORS:
                if IPerror6 not in pkt:
                    violation(n, pkt, "ICMPv6 error to the global address with an unparseable quote")
                elif pkt[IPerror6].src != GLOBAL6:
                    violation(n, pkt, f"ICMPv6 error to {GLOBAL6} quoting a packet from {pkt[IPerror6].src}")
                else:
                    counts["err6"] += 1
    return counts, violations


def self_test():
    """The checker must catch leaks: synthetic packets, each with one fault."""
    R, W = "02:00:00:00:00:01", "02:00:00:00:00:02"
    out = Ether(src=R, dst=W)
    inb = Ether(src=W, dst=R)
    good = [
        out / IP(src=GLOBAL4, dst="198.19.0.2") / UDP(sport=1234, dport=7),
        out / IPv6(src=GLOBAL6, dst="2001:db8:19::2") / TCP(sport=1234, dport=80),
        inb / IP(src="198.19.0.2", dst=GLOBAL4) / ICMP(type=3, code=3) / IP(src=GLOBAL4, dst="198.19.0.2") / UDP(),
        inb / IPv6(src="2001:db8:19::2", dst=GLOBAL6) / ICMPv6TimeExceeded() / IPv6(src=GLOBAL6, dst="2001:db8:51::2") / UDP(),
        out / IPv6(src="fe80::1", dst="ff02::1:ff00:2") / ICMPv6ND_NS(tgt="2001:db8:19::2"),
    ]
    bad = [
        out / IP(src="198.18.0.2", dst="198.19.0.2") / UDP(sport=1234, dport=7),
        out / IP(src="198.19.0.1", dst="198.19.0.2") / TCP(),
        out / IPv6(src="fd00:18::2", dst="2001:db8:19::2") / UDP(),
        inb / IP(src="198.19.0.2", dst=GLOBAL4) / ICMP(type=11) / IP(src="198.18.0.2", dst="198.51.100.2") / UDP(),
        inb / IPv6(src="2001:db8:19::2", dst=GLOBAL6) / ICMPv6PacketTooBig(mtu=1280) / IPv6(src="fd00:18::2", dst="2001:db8:51::2") / UDP(),
        out / IP(src=GLOBAL4, dst="198.19.0.2") / ICMP(type=3, code=3) / IP(src="198.19.0.2", dst=GLOBAL4) / UDP(),
    ]
    counts, violations = check([Ether(bytes(p)) for p in good], R)
    if violations or counts["err4"] != 1 or counts["err6"] != 1 or counts["out4.udp"] != 1 or counts["out6.tcp"] != 1:
        print(f"self-test FAILED on clean packets: {counts} {violations}")
        return 1
    for p in bad:
        _, violations = check([Ether(bytes(p))], R)
        if not violations:
            print(f"self-test FAILED: no violation found in {p.summary()}")
            return 1
    print(f"self-test passed: {len(good)} clean packets accepted, {len(bad)} faulty ones caught")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap", nargs="?")
    ap.add_argument("--router-mac")
    ap.add_argument("--expect", nargs="*", default=[])
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()

    packets = list(PcapReader(args.pcap))
    counts, violations = check(packets, args.router_mac)
    print(f"capture {args.pcap}: {len(packets)} packets")
    print("from the router (translated): " + ", ".join(f"{k} {v}" for k, v in counts.items() if k.startswith("out")))
    print(f"ICMP errors to the global address, quoting it: IPv4 {counts['err4']}, IPv6 {counts['err6']}")
    ok = True
    for v in violations[:50]:
        print("VIOLATION " + v)
    if violations:
        print(f"{len(violations)} violation(s)")
        ok = False
    for e in args.expect:
        key, _, minimum = e.partition("=")
        if counts[key] < int(minimum):
            print(f"MISSING: expected at least {minimum} of {key}, saw {counts[key]}")
            ok = False
    print("capture check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
