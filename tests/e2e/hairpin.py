#!/usr/bin/python3
"""Two inside hosts reach each other through natd's global address.

  hairpin.py FAMILY MODE A_PORT B_PORT

Run in the lan namespace, with reflector.py in the wan namespace. Host A
(198.18.0.2 / fd00:18::2) and host B (.3 / ::3) learn their external
endpoints from the reflector, then talk to each other's external endpoint
only (RFC 4787 REQ-9, RFC 5382 REQ-8):

  MODE open   (an endpoint-independent-filtering preset, e.g. full-cone)
    UDP: A's datagram reaches B; B's answer reaches A.
    TCP: A connects to B's external endpoint and B accepts it.
  MODE punch  (a filtering preset, e.g. port-restricted-cone)
    UDP: A's first datagram is filtered; after B sends to A's external
    endpoint (hole punching) both directions pass.

Each side must see the other's external address (the global address), never
its inside address (REQ-9b). Then B's socket closes and A's next datagram is
answered by B's kernel with an ICMP port unreachable, which natd hairpins
back to A's socket as ECONNREFUSED (RFC 5508 §6).
"""
import os
import socket
import sys

GLOBAL = {4: "198.19.0.100", 6: "2001:db8:19::100"}
HOSTS = {4: ("198.18.0.2", "198.18.0.3"), 6: ("fd00:18::2", "fd00:18::3")}
REFLECTOR = {4: "198.19.0.2", 6: "2001:db8:19::2"}


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def ep(addr):
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"


def udp_external(s, fam):
    # Asked up to HAIRPIN_TRIES times (default 3), a second each, as a safety
    # net: one try must do. B's first IPv6 answer used to come after 1-2 s
    # (more than 1 s in 6 of 6 runs): natd wrote it within 0.1 ms, but the
    # router's link-local address on rtr-lan was still tentative (DAD), so the
    # kernel sent no neighbour solicitation for fd00:18::3 until its 1 s
    # retransmission. The lab now turns DAD off (tests/lab/lab.sh, lab_up).
    # The answer itself is checked as before.
    tries = int(os.environ.get("HAIRPIN_TRIES", "3"))
    timeout = s.gettimeout()
    s.settimeout(1)
    for attempt in range(tries):
        s.sendto(b"who", (REFLECTOR[fam], 9999))
        try:
            data, _ = s.recvfrom(100)
            break
        except socket.timeout:
            print(f"udp: no answer from the reflector within 1 s (try {attempt + 1} of {tries})")
    else:
        fail(f"udp: the reflector never answered ({tries} tries)")
    if attempt > 0:
        # A late answer to an earlier try must not pass for a later message.
        s.settimeout(0.3)
        try:
            while True:
                s.recvfrom(100)
        except socket.timeout:
            pass
    s.settimeout(timeout)
    ip, port = data.decode().split()
    if ip != GLOBAL[fam]:
        fail(f"reflector saw {ip}, not the global address")
    return int(port)


def recv_from(s, what):
    try:
        return s.recvfrom(2048)
    except socket.timeout:
        fail(f"{what}: nothing arrived within {s.gettimeout()} s")


def main():
    fam, mode, a_port, b_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    af = socket.AF_INET6 if fam == 6 else socket.AF_INET
    a_ip, b_ip = HOSTS[fam]
    g = GLOBAL[fam]

    # --- UDP ---
    a = socket.socket(af, socket.SOCK_DGRAM)
    b = socket.socket(af, socket.SOCK_DGRAM)
    a.bind((a_ip, a_port))
    b.bind((b_ip, b_port))
    for s in (a, b):
        s.settimeout(2)
    a_ext, b_ext = udp_external(a, fam), udp_external(b, fam)
    print(f"udp: A {ep((a_ip, a_port))} is {ep((g, a_ext))}, B {ep((b_ip, b_port))} is {ep((g, b_ext))}")
    if mode == "punch":
        a.sendto(b"too early", (g, b_ext))
        b.settimeout(0.5)
        try:
            data, peer = b.recvfrom(2048)
            fail(f"B's filtering let {data!r} from {ep(peer)} in before B sent to A")
        except socket.timeout:
            print("udp: A's first datagram is filtered (B has not sent to A's external endpoint)")
        b.settimeout(2)
        b.sendto(b"punch", (g, a_ext))
        data, peer = recv_from(a, "B's punch to A")
        if peer[:2] != (g, b_ext) or data != b"punch":
            fail(f"A got {data!r} from {ep(peer)}, want b'punch' from {ep((g, b_ext))}")
        print(f"udp: B's datagram reached A from {ep(peer)}")
    token = os.urandom(8).hex().encode()
    a.sendto(token, (g, b_ext))
    data, peer = recv_from(b, "A's datagram to B's external endpoint")
    if data != token or peer[:2] != (g, a_ext):
        fail(f"B got {data!r} from {ep(peer)}, want {token!r} from {ep((g, a_ext))} (never {a_ip})")
    print(f"udp: A's datagram reached B from {ep(peer)}")
    b.sendto(token[::-1], peer[:2])
    data, peer = recv_from(a, "B's answer")
    if data != token[::-1] or peer[:2] != (g, b_ext):
        fail(f"A got {data!r} from {ep(peer)}, want the answer from {ep((g, b_ext))}")
    print(f"udp: B's answer reached A from {ep(peer)}")
    # B's socket closes; its kernel refuses A's next datagram with an ICMP
    # port unreachable, hairpinned back to A.
    b.close()
    a.connect((g, b_ext))
    a.send(b"anyone?")
    try:
        a.recv(2048)
        fail("a datagram came back from a closed port")
    except ConnectionRefusedError:
        print("udp: the ICMP port unreachable from B reached A (ECONNREFUSED)")
    except socket.timeout:
        fail("no ICMP error came back to A from B's closed port")
    a.close()

    if mode != "open":
        return 0
    # --- TCP: B listens and, from the same port, learns its external endpoint ---
    lst = socket.socket(af, socket.SOCK_STREAM)
    out = socket.socket(af, socket.SOCK_STREAM)
    for s in (lst, out):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((b_ip, b_port))
        s.settimeout(3)
    lst.listen(4)
    out.connect((REFLECTOR[fam], 9999))
    ip, port = out.makefile().readline().split()
    out.close()
    b_ext = int(port)
    if ip != g:
        fail(f"reflector saw B's TCP from {ip}")
    c = socket.create_connection((g, b_ext), timeout=3, source_address=(a_ip, a_port))
    conn, peer = lst.accept()
    if peer[0] != g:
        fail(f"B accepted A's connection from {ep(peer)}, not from the global address")
    print(f"tcp: A {ep((a_ip, a_port))} connected to B through {ep((g, b_ext))}; B sees {ep(peer)}")
    conn.settimeout(3)
    payload = os.urandom(200000)
    c.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = conn.recv(65536)
        if not chunk:
            break
        got += chunk
    if got != payload:
        fail(f"B received {len(got)} of {len(payload)} bytes, or different ones")
    conn.sendall(b"thanks")
    if c.recv(100) != b"thanks":
        fail("B's answer did not reach A")
    print(f"tcp: {len(payload)} bytes A -> B and an answer back")
    c.close()
    conn.close()
    lst.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
