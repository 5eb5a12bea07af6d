#!/usr/bin/python3
"""Opens UDP sockets one after another (kept open) towards HOST:PORT, an echo
server, and reports what each gets back:

  refused_probe.py HOST PORT COUNT OK

exit 0 iff the first OK sockets get their echo and every later one gets the
ICMP "administratively prohibited" that natd sends when it refuses a new
mapping (Linux: EHOSTUNREACH over IPv4, EACCES over IPv6).
"""
import errno
import os
import socket
import sys


def main():
    host, port, count, ok = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    want_errno = errno.EACCES if fam == socket.AF_INET6 else errno.EHOSTUNREACH
    socks, good = [], True
    for i in range(count):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.connect((host, port))
        socks.append(s)
        token = os.urandom(6).hex().encode()
        s.send(token)
        try:
            data = s.recv(2048)
            outcome = "echo" if data == token else f"unexpected {data!r}"
        except socket.timeout:
            outcome = "timeout"
        except OSError as e:
            outcome = f"errno {errno.errorcode.get(e.errno, e.errno)}"
        expected = "echo" if i < ok else f"errno {errno.errorcode[want_errno]}"
        print(f"socket {i} from port {s.getsockname()[1]}: {outcome} (want {expected})")
        good &= outcome == expected
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
