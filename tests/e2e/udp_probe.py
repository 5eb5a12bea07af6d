#!/usr/bin/python3
"""A connected UDP socket sends one datagram and reports what comes back.

  udp_probe.py HOST PORT refused   exit 0 iff the send is answered by an ICMP
                                   port unreachable (ECONNREFUSED on recv)
  udp_probe.py HOST PORT echo      exit 0 iff the same bytes come back

Run in the lan namespace; through natd the ICMP error arrives only if natd
translates it back to the inside socket.
"""
import os
import socket
import sys


def main():
    host, port, want = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.connect((host, port))
    token = os.urandom(8).hex().encode()
    s.send(token)
    try:
        data = s.recv(2048)
    except ConnectionRefusedError:
        print(f"udp to {host}:{port} from {s.getsockname()[:2]}: connection refused (ICMP port unreachable came back)")
        return 0 if want == "refused" else 1
    except socket.timeout:
        print(f"udp to {host}:{port}: no answer within 3 s (no ICMP error came back)")
        return 1
    ok = want == "echo" and data == token
    print(f"udp to {host}:{port}: got {data!r} ({'the echo' if data == token else 'not the echo'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
