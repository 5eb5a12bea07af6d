#!/usr/bin/python3
"""A PCP (RFC 6887) MAP client, for the IPv6 half of pcp_test (natpmpc speaks
NAT-PMP over IPv4 only).

  pcp_client.py SERVER CLIENT PROTO INTERNAL_PORT LIFETIME [SUGGESTED [CLAIMED]]

Sends one MAP request from CLIENT to SERVER:5351 (saying it comes from
CLAIMED, CLIENT by default) and prints
"result R external [ADDR]:PORT lifetime L"; exit 0 iff the result is 0.
"""
import ipaddress
import os
import socket
import struct
import sys


def main():
    server, client, proto, internal, lifetime = sys.argv[1:6]
    suggested = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    claimed = sys.argv[7] if len(sys.argv) > 7 else client
    proto_num = {"tcp": 6, "udp": 17}[proto]
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    caddr = ipaddress.ip_address(claimed)
    cbytes = caddr.packed if caddr.version == 6 else b"\0" * 10 + b"\xff\xff" + caddr.packed
    nonce = os.urandom(12)
    req = struct.pack("!BBHI", 2, 1, 0, int(lifetime)) + cbytes
    req += nonce + struct.pack("!B3xHH", proto_num, int(internal), suggested) + b"\0" * 16
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((client, 0))
    s.settimeout(2)
    s.sendto(req, (server, 5351))
    data, _ = s.recvfrom(1100)
    version, op, _, result, life, epoch = struct.unpack("!BBBBII", data[:12])
    if version != 2 or op != 0x81 or len(data) < 60 or data[24:36] != nonce:
        print(f"bad response: {data.hex()}")
        return 1
    ext_port = struct.unpack("!H", data[42:44])[0]
    ext = ipaddress.ip_address(data[44:60])
    if ext.ipv4_mapped:
        ext = ext.ipv4_mapped
    print(f"result {result} external [{ext}]:{ext_port} lifetime {life} epoch {epoch}")
    return 0 if result == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
