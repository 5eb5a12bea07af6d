#!/usr/bin/python3
"""Tells each client the address and port it came from, like a STUN server.

  reflector.py ADDR... [--port 9999]

For every address: UDP answers each datagram with "IP PORT"; TCP writes
"IP PORT\n" and closes. Run in the wan namespace; through natd the clients
learn their external endpoint. Runs until killed.
"""
import argparse
import selectors
import socket


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addrs", nargs="+")
    ap.add_argument("--port", type=int, default=9999)
    args = ap.parse_args()
    sel = selectors.DefaultSelector()
    for addr in args.addrs:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        u = socket.socket(fam, socket.SOCK_DGRAM)
        u.bind((addr, args.port))
        sel.register(u, selectors.EVENT_READ, "udp")
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, args.port))
        t.listen(64)
        sel.register(t, selectors.EVENT_READ, "tcp")
    print("reflector ready", flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if key.data == "udp":
                _, peer = s.recvfrom(2048)
                s.sendto(f"{peer[0]} {peer[1]}".encode(), peer)
            else:
                c, peer = s.accept()
                try:
                    c.sendall(f"{peer[0]} {peer[1]}\n".encode())
                finally:
                    c.close()


if __name__ == "__main__":
    main()
