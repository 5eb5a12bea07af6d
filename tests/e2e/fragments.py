#!/usr/bin/python3
"""UDP datagrams larger than the MTU through natd, both ways (RFC 4787 REQ-14).

  fragments.py FAMILY HOST PORT SIZE...    echo: each datagram of SIZE bytes
                                           leaves in fragments (the lan
                                           kernel cuts it) and its echo comes
                                           back in fragments (the wan one's)
  fragments.py FAMILY HOST PORT reverse    scapy sends a 3000-byte datagram's
                                           fragments last one first; the echo
                                           must come back whole

Run in the lan namespace against a UDP echo server in wan. Exit 0 iff every
echo came back byte for byte.
"""
import os
import socket
import sys


def echo(fam, host, port, size):
    af = socket.AF_INET6 if fam == 6 else socket.AF_INET
    s = socket.socket(af, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.connect((host, port))
    data = os.urandom(size)
    s.send(data)
    try:
        got = s.recv(65536)
    except socket.timeout:
        print(f"IPv{fam}: no echo of a {size}-byte datagram within 3 s")
        return False
    ok = got == data
    print(f"IPv{fam}: {size}-byte datagram: echo of {len(got)} bytes, {'equal' if ok else 'DIFFERENT'}")
    return ok


def reverse(fam, host, port):
    from scapy.all import IP, IPv6, UDP, Raw, fragment, fragment6, IPv6ExtHdrFragment, send, conf
    conf.verb = 0
    af = socket.AF_INET6 if fam == 6 else socket.AF_INET
    src = "198.18.0.2" if fam == 4 else "fd00:18::2"
    # A socket owns the source port, so the echo has somewhere to land.
    s = socket.socket(af, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.bind((src, 0))
    sport = s.getsockname()[1]
    data = os.urandom(3000)
    if fam == 4:
        frags = fragment(IP(src=src, dst=host, id=0x5151) / UDP(sport=sport, dport=port) / Raw(data), fragsize=1000)
    else:
        pkt = IPv6(src=src, dst=host) / IPv6ExtHdrFragment(id=0x515151) / UDP(sport=sport, dport=port) / Raw(data)
        frags = fragment6(pkt, 1280)
    frags = list(reversed(frags))
    for f in frags:
        send(f)
    try:
        got, peer = s.recvfrom(65536)
    except socket.timeout:
        print(f"IPv{fam}: {len(frags)} fragments sent last first: no echo within 3 s")
        return False
    ok = got == data
    print(f"IPv{fam}: {len(frags)} fragments sent last first: echo of {len(got)} bytes from {peer[0]}, "
          f"{'equal' if ok else 'DIFFERENT'}")
    return ok


def main():
    fam, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if sys.argv[4] == "reverse":
        return 0 if reverse(fam, host, port) else 1
    return 0 if all(echo(fam, host, port, int(n)) for n in sys.argv[4:]) else 1


if __name__ == "__main__":
    sys.exit(main())
