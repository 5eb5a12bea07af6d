#!/usr/bin/python3
"""Mapping and filtering of UDP through natd, seen from both sides (RFC 4787).

One process holds sockets in two namespaces (setns before creating each):
a UDP socket in lan, three in wan: A = W1:5000, B = W1:5001 (same address,
other port), C = W2:5000 (other address).

  1. lan sends to A; A learns natd's external endpoint from the source of
     what it receives (must be the global address); A's reply must arrive.
  2. Unsolicited, B and C send to that external endpoint (twice each);
     the lan socket records which arrive: EIF lets both in, ADF only B,
     APDF neither.
  3. lan sends to C, then to B; C and B learn the external ports natd used:
     same as for A (endpoint-independent, or a preset reusing the last port),
     next (A's + 1, then + 2: the "increment" presets), other (a new port).

  nat_behavior.py --lan NS --wan NS --family 4|6 --filtering EIF|ADF|APDF \
                  --to-other-address same|next|other --to-other-port same|next|other
Exit 0 iff everything is as expected; prints what it saw.
"""
import argparse
import os
import select
import socket
import sys
import time

from netns_sockets import socket_in


ADDRS = {
    4: dict(lan="198.18.0.2", w1="198.19.0.2", w2="198.19.0.3", glob="198.19.0.100"),
    6: dict(lan="fd00:18::2", w1="2001:db8:19::2", w2="2001:db8:19::3", glob="2001:db8:19::100"),
}


def udp_socket_in(netns, family, bind):
    return socket_in(netns, family, socket.SOCK_DGRAM, bind)


def recv(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    if not r:
        return None, None
    data, src = sock.recvfrom(2048)
    return data, src[:2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lan", required=True)
    ap.add_argument("--wan", required=True)
    ap.add_argument("--family", type=int, choices=(4, 6), default=4)
    ap.add_argument("--filtering", choices=("EIF", "ADF", "APDF"), required=True)
    ap.add_argument("--to-other-address", choices=("same", "next", "other"), required=True)
    ap.add_argument("--to-other-port", choices=("same", "next", "other"), required=True)
    args = ap.parse_args()
    a = ADDRS[args.family]
    fam = args.family
    errors = []

    lan = udp_socket_in(args.lan, fam, (a["lan"], 0))
    A = udp_socket_in(args.wan, fam, (a["w1"], 5000))
    B = udp_socket_in(args.wan, fam, (a["w1"], 5001))
    C = udp_socket_in(args.wan, fam, (a["w2"], 5000))
    ep = {"A": (a["w1"], 5000), "B": (a["w1"], 5001), "C": (a["w2"], 5000)}
    inside = lan.getsockname()[:2]
    print(f"IPv{fam}: inside socket {inside}; remotes A={ep['A']} B={ep['B']} C={ep['C']}")

    # 1. Outbound to A; A learns the external endpoint.
    lan.sendto(b"to-A", ep["A"])
    data, ext = recv(A, 3)
    if data != b"to-A":
        print("FAIL: A received nothing from lan (outbound translation broken)")
        return 1
    print(f"A received {data!r} from {ext}: natd's external endpoint")
    if ext[0] != a["glob"]:
        errors.append(f"the source at A is {ext[0]}, not the global address {a['glob']}")
    A.sendto(b"A-reply", ext)
    data, src = recv(lan, 3)
    if data != b"A-reply" or src != ep["A"]:
        print(f"FAIL: A's reply did not reach lan (got {data!r} from {src})")
        return 1
    print(f"lan received A's reply from {src}")

    # 2. Unsolicited from B (same address, other port) and C (other address).
    for _ in range(2):
        B.sendto(b"unsolicited-B", ext)
        C.sendto(b"unsolicited-C", ext)
        time.sleep(0.05)
    arrived = set()
    deadline = time.time() + 0.8
    while time.time() < deadline:
        data, src = recv(lan, max(0.0, deadline - time.time()))
        if data is None:
            break
        for name, e in ep.items():
            if src == e and data == f"unsolicited-{name}".encode():
                arrived.add(name)
    want = {"EIF": {"B", "C"}, "ADF": {"B"}, "APDF": set()}[args.filtering]
    for name, why in (("B", "same address, other port"), ("C", "other address")):
        got = "delivered" if name in arrived else "dropped"
        exp = "delivered" if name in want else "dropped"
        print(f"filtering {args.filtering}: unsolicited from {name} ({why}) {got}, expected {exp}")
        if got != exp:
            errors.append(f"{args.filtering}: unsolicited from {name} ({why}) was {got}, expected {exp}")

    # 3. Mapping: the external ports towards C, then B.
    ports = {"A": ext[1]}
    for name in ("C", "B"):
        lan.sendto(f"to-{name}".encode(), ep[name])
        sock = C if name == "C" else B
        while True:
            data, src = recv(sock, 3)
            if data is None or data == f"to-{name}".encode():
                break
        if data is None:
            print(f"FAIL: {name} received nothing from lan")
            return 1
        if src[0] != a["glob"]:
            errors.append(f"the source at {name} is {src[0]}, not the global address")
        ports[name] = src[1]
    print(f"external ports: towards A {ports['A']}, towards C (other address) {ports['C']}, "
          f"towards B (other port) {ports['B']}")

    def relation(port, before):
        if port == ports["A"]:
            return "same"
        if port == max(before) + 1:
            return "next"
        return "other"

    rel_c = relation(ports["C"], [ports["A"]])
    rel_b = relation(ports["B"], [ports["A"], ports["C"]] if ports["C"] != ports["A"] else [ports["A"]])
    for what, got, exp in (("other address (C)", rel_c, args.to_other_address),
                           ("other port (B)", rel_b, args.to_other_port)):
        print(f"mapping towards the {what}: {got} port, expected {exp}")
        if got != exp:
            errors.append(f"mapping towards the {what}: {got} port, expected {exp}")

    for e in errors:
        print("FAIL: " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
