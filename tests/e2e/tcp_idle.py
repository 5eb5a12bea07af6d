#!/usr/bin/python3
"""A TCP connection through natd that survives an idle pause, then closes.

One process, sockets in two namespaces (setns before creating each): a
listener in wan, a client in lan.

  tcp_idle.py --lan NS --wan NS --family 4|6 --port P --idle SECONDS

  1. connect lan -> wan, exchange 64 KiB each way (checked byte for byte);
     print "ESTABLISHED <inside port>";
  2. stay idle for --idle seconds (the test checks natd's status meanwhile);
  3. exchange 64 KiB each way again: must work (an established session must
     outlive the transitory timeout); print "ALIVE";
  4. close both ways with FIN/FIN (client shuts down writing, server reads EOF
     and closes, client reads EOF); print "CLOSED".
Exit 0 iff every step worked.
"""
import argparse
import os
import socket
import sys
import time

from netns_sockets import recv_exactly, socket_in

ADDRS = {4: ("198.18.0.2", "198.19.0.2"), 6: ("fd00:18::2", "2001:db8:19::2")}


def exchange(client, server, label):
    up, down = os.urandom(65536), os.urandom(65536)
    client.sendall(up)
    if recv_exactly(server, len(up)) != up:
        raise AssertionError(f"{label}: lan -> wan data corrupted")
    server.sendall(down)
    if recv_exactly(client, len(down)) != down:
        raise AssertionError(f"{label}: wan -> lan data corrupted")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lan", required=True)
    ap.add_argument("--wan", required=True)
    ap.add_argument("--family", type=int, choices=(4, 6), default=4)
    ap.add_argument("--port", type=int, default=6000)
    ap.add_argument("--idle", type=float, default=6)
    args = ap.parse_args()
    lan_addr, wan_addr = ADDRS[args.family]

    listener = socket_in(args.wan, args.family)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((wan_addr, args.port))
    listener.listen(1)
    listener.settimeout(5)
    client = socket_in(args.lan, args.family)
    client.settimeout(5)
    client.bind((lan_addr, 0))
    client.connect((wan_addr, args.port))
    server, peer = listener.accept()
    server.settimeout(5)
    print(f"IPv{args.family}: connected {client.getsockname()[:2]} -> {(wan_addr, args.port)}; "
          f"the server sees {peer[:2]}", flush=True)
    exchange(client, server, "before the pause")
    print(f"ESTABLISHED {client.getsockname()[1]}", flush=True)

    t0 = time.monotonic()
    time.sleep(args.idle)
    try:
        exchange(client, server, f"after {args.idle:g} s idle")
    except (OSError, EOFError, AssertionError) as e:
        print(f"FAIL: after {time.monotonic() - t0:.1f} s idle the connection no longer works: {e!r}", flush=True)
        return 1
    print(f"ALIVE after {time.monotonic() - t0:.1f} s idle: 64 KiB each way again", flush=True)

    client.shutdown(socket.SHUT_WR)          # FIN lan -> wan
    if server.recv(1) != b"":
        print("FAIL: the server did not see the client's FIN", flush=True)
        return 1
    server.close()                            # FIN wan -> lan
    if client.recv(1) != b"":
        print("FAIL: the client did not see the server's FIN", flush=True)
        return 1
    client.close()
    listener.close()
    print("CLOSED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
