#!/usr/bin/python3
"""Path MTU discovery by a UDP socket through natd.

  pmtu_probe.py HOST PORT SIZE EXPECTED_MTU

A connected UDP socket with "don't fragment" semantics (IP_PMTUDISC_DO /
IPV6_PMTUDISC_DO) sends SIZE bytes of payload to HOST:PORT. A router on the
way with a smaller MTU answers with Fragmentation Needed / Packet Too Big;
natd must translate it back to the inside socket, whose path MTU (IP_MTU /
IPV6_MTU) then drops to EXPECTED_MTU, and a second send of SIZE bytes fails
locally with EMSGSIZE. Exit 0 iff both happen.
"""
import errno
import socket
import sys
import time

IP_MTU_DISCOVER, IP_MTU, IP_PMTUDISC_DO = 10, 14, 2
IPV6_MTU_DISCOVER, IPV6_MTU, IPV6_PMTUDISC_DO = 23, 24, 2


def main():
    host, port, size, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    v6 = ":" in host
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    level, discover, mtu_opt = (
        (socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_MTU) if v6 else (socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_MTU))
    s.setsockopt(level, discover, IPV6_PMTUDISC_DO if v6 else IP_PMTUDISC_DO)
    s.connect((host, port))
    before = s.getsockopt(level, mtu_opt)
    print(f"udp to {host}:{port}: path MTU {before} before; sending {size} bytes, don't fragment")
    s.send(b"x" * size)
    mtu = before
    deadline = time.time() + 3
    while time.time() < deadline:
        try:
            s.setblocking(False)
            s.recv(65535)  # clears a pending error, if any
        except (BlockingIOError, OSError):
            pass
        mtu = s.getsockopt(level, mtu_opt)
        if mtu == expected:
            break
        time.sleep(0.05)
    print(f"path MTU now {mtu} (expected {expected})")
    if mtu != expected:
        print("the Fragmentation Needed / Packet Too Big did not reach the inside socket")
        return 1
    try:
        s.send(b"x" * size)
    except OSError as e:
        if e.errno == errno.EMSGSIZE:
            print(f"second send of {size} bytes: EMSGSIZE (message too long), as it must")
            return 0
        raise
    print(f"second send of {size} bytes went out although the path MTU is {mtu}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
