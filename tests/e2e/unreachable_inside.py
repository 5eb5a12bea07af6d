#!/usr/bin/python3
"""The wan half of an outbound-ICMP-error check (RFC 5508).

  unreachable_inside.py BIND_ADDR PORT   (run in the wan namespace)

Waits for one datagram (sent through natd by a lan socket that then closes),
answers it on a socket connected to where it came from (natd's global
address and external port), and exits 0 iff that answer comes back as
ECONNREFUSED: the lan host's port unreachable, translated by natd so that
its quote matches what this socket sent.
"""
import socket
import sys
import time


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    listener = socket.socket(fam, socket.SOCK_DGRAM)
    listener.bind((addr, port))
    listener.settimeout(10)
    data, peer = listener.recvfrom(2048)
    print(f"got {data!r} from {peer[:2]}")
    # Give the lan sender time to close its socket (its interpreter may still
    # be exiting), or the reply would simply be queued on it.
    time.sleep(0.5)
    # Reply from the port the lan host sent to: that is the session natd knows.
    listener.close()
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.bind((addr, port))
    s.connect(peer[:2])
    s.send(b"reply to a closed port")
    try:
        s.recv(2048)
    except ConnectionRefusedError:
        print(f"reply to {peer[:2]}: connection refused (the inside host's port unreachable, translated)")
        return 0
    except socket.timeout:
        print(f"reply to {peer[:2]}: no ICMP error came back within 3 s")
        return 1
    print("reply was answered with data: unexpected")
    return 1


if __name__ == "__main__":
    sys.exit(main())
