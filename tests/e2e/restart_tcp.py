#!/usr/bin/python3
"""A TCP connection through natd across a restart of natd.

One process, sockets in two namespaces (setns before creating each): a
listener in wan, a client in lan.

  restart_tcp.py --lan NS --wan NS --family 4|6 --port P --resume FILE [--expect-broken]

  1. connect lan -> wan, exchange 64 KiB each way (checked byte for byte);
     print "ESTABLISHED <inside port> <external port the server sees>";
  2. wait (40 s at most) until FILE exists: meanwhile the test restarts natd;
  3. the server sends 64 KiB first: inbound, only a mapping natd restored
     lets it in (an unknown inbound segment is dropped); then the client
     sends 64 KiB; print "ALIVE";
  4. close both ways with FIN/FIN; print "CLOSED".
Exit 0 iff every step worked. With --expect-broken (natd restarted without
its state), step 3 must fail instead: print "BROKEN: <why>" and exit 0, or
exit 1 if the connection still works.
"""
import argparse
import os
import socket
import sys
import time

from netns_sockets import recv_exactly, socket_in

ADDRS = {4: ("198.18.0.2", "198.19.0.2"), 6: ("fd00:18::2", "2001:db8:19::2")}


def send_and_check(sender, receiver, label):
    data = os.urandom(65536)
    sender.sendall(data)
    if recv_exactly(receiver, len(data)) != data:
        raise AssertionError(f"{label}: data corrupted")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lan", required=True)
    ap.add_argument("--wan", required=True)
    ap.add_argument("--family", type=int, choices=(4, 6), default=4)
    ap.add_argument("--port", type=int, default=6100)
    ap.add_argument("--resume", required=True, help="file whose existence means natd is back")
    ap.add_argument("--expect-broken", action="store_true")
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
    send_and_check(client, server, "lan -> wan before the restart")
    send_and_check(server, client, "wan -> lan before the restart")
    print(f"ESTABLISHED {client.getsockname()[1]} {peer[1]}", flush=True)

    deadline = time.monotonic() + 40
    while not os.path.exists(args.resume):
        if time.monotonic() > deadline:
            print(f"FAIL: {args.resume} did not appear within 40 s", flush=True)
            return 1
        time.sleep(0.05)

    t0 = time.monotonic()
    if args.expect_broken:
        client.settimeout(3)
        server.settimeout(3)
    try:
        send_and_check(server, client, "wan -> lan after the restart (inbound first)")
        send_and_check(client, server, "lan -> wan after the restart")
    except (OSError, EOFError, AssertionError) as e:
        if args.expect_broken:
            print(f"BROKEN: {e!r} after {time.monotonic() - t0:.1f} s", flush=True)
            return 0
        print(f"FAIL: after the restart the connection no longer works: {e!r}", flush=True)
        return 1
    if args.expect_broken:
        print("FAIL: the connection still works, yet natd was restarted without its state", flush=True)
        return 1
    print(f"ALIVE after {time.monotonic() - t0:.2f} s: 64 KiB each way, inbound first", flush=True)

    client.shutdown(socket.SHUT_WR)  # FIN lan -> wan
    if server.recv(1) != b"":
        print("FAIL: the server did not see the client's FIN", flush=True)
        return 1
    server.close()  # FIN wan -> lan
    if client.recv(1) != b"":
        print("FAIL: the client did not see the server's FIN", flush=True)
        return 1
    client.close()
    listener.close()
    print("CLOSED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
