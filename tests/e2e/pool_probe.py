#!/usr/bin/python3
"""Paired address pooling seen by a remote host (RFC 4787 REQ-2).

  pool_probe.py SOURCE REFLECTOR POOL_ADDR...

From SOURCE (an inside address), 6 UDP sockets and 3 TCP connections ask
reflector.py (port 9999) which address they came from. Prints it; exit 0
iff it is one and the same address of the pool for all of them.
"""
import socket
import sys


def main():
    src, reflector, pool = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    seen = []
    for _ in range(6):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.settimeout(2)
        s.sendto(b"who", (reflector, 9999))
        seen.append(s.recvfrom(100)[0].decode().split()[0])
        s.close()
    for _ in range(3):
        c = socket.create_connection((reflector, 9999), timeout=2, source_address=(src, 0))
        seen.append(c.makefile().readline().split()[0])
        c.close()
    addrs = set(seen)
    print(f"{src}: left from {' '.join(sorted(addrs))} ({len(seen)} flows)")
    return 0 if len(addrs) == 1 and addrs <= pool else 1


if __name__ == "__main__":
    sys.exit(main())
