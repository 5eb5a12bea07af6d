#!/usr/bin/python3
"""Many short flows for bench/soak.sh: every flow on a new socket, so on a
new source port, so a new mapping and session in natd.

  churn.py server
      in wan: TCP on port 8080 (reads one line "N", answers N bytes, closes)
      and a UDP echo on port 7000, on 198.19.0.2 and [2001:db8:19::2].
  churn.py client --duration S --tcp-rate F --udp-rate F
      in lan: F new TCP flows and F new UDP flows a second (IPv4 and IPv6
      alternately), for S seconds; then one JSON line with how many flows
      completed and failed.
  churn.py long --duration S --mbps M
      in lan: one TCP connection to port 8081 (a sink) sending M Mbit/s
      for S seconds, then closing; one JSON line with what it sent. (Not
      iperf3: its control connection is idle for the whole test, so a
      short --tcp_established_timeout would expire it.)

A TCP flow connects, asks for --tcp-bytes bytes, reads them to the
server's close and closes. A UDP flow sends --udp-datagrams datagrams one
after the other, each waiting for its echo (1 s at most), and closes.
"""
import argparse
import asyncio
import json
import socket
import sys
import time

SERVERS = ("198.19.0.2", "2001:db8:19::2")
TCP_PORT, UDP_PORT, SINK_PORT = 8080, 7000, 8081


async def serve_tcp(reader, writer):
    try:
        line = await asyncio.wait_for(reader.readline(), 10)
        writer.write(b"x" * min(int(line or b"0"), 1 << 20))
        await writer.drain()
    except (asyncio.TimeoutError, ValueError, ConnectionError):
        pass
    finally:
        writer.close()


async def sink(reader, writer):
    try:
        while await reader.read(1 << 16):
            pass
    except ConnectionError:
        pass
    finally:
        writer.close()


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def server():
    loop = asyncio.get_running_loop()
    servers = []
    for host in SERVERS:
        servers.append(await asyncio.start_server(serve_tcp, host, TCP_PORT, backlog=1024, reuse_address=True))
        servers.append(await asyncio.start_server(sink, host, SINK_PORT, reuse_address=True))
        await loop.create_datagram_endpoint(Echo, local_addr=(host, UDP_PORT))
    print("churn server ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


class Client:
    def __init__(self, args):
        self.args = args
        self.stats = {"tcp_ok": 0, "tcp_failed": 0, "udp_ok": 0, "udp_failed": 0}

    async def tcp_flow(self, host):
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, TCP_PORT), 5)
            writer.write(b"%d\n" % self.args.tcp_bytes)
            got = len(await asyncio.wait_for(reader.read(-1), 10))
            writer.close()
            ok = got == self.args.tcp_bytes
        except (OSError, asyncio.TimeoutError):
            ok = False
        self.stats["tcp_ok" if ok else "tcp_failed"] += 1

    async def udp_flow(self, host):
        loop = asyncio.get_running_loop()
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        sock.setblocking(False)
        ok = True
        try:
            sock.connect((host, UDP_PORT))
            for i in range(self.args.udp_datagrams):
                msg = b"churn %d" % i
                await loop.sock_sendall(sock, msg)
                if await asyncio.wait_for(loop.sock_recv(sock, 2048), 1) != msg:
                    ok = False
        except (OSError, asyncio.TimeoutError):
            ok = False
        finally:
            sock.close()
        self.stats["udp_ok" if ok else "udp_failed"] += 1

    async def spawn(self, rate, flow):
        """Starts flow() every 1/rate s, IPv4 and IPv6 alternately; a flow
        still running when the next is due just overlaps it."""
        if rate <= 0:
            return
        t0 = time.monotonic()
        n = 0
        while n / rate < self.args.duration:
            await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
            task = asyncio.ensure_future(flow(SERVERS[n % 2]))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            n += 1

    async def run(self):
        self.tasks = set()
        t0 = time.monotonic()
        await asyncio.gather(self.spawn(self.args.tcp_rate, self.tcp_flow),
                             self.spawn(self.args.udp_rate, self.udp_flow))
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=15)
        self.stats["seconds"] = round(time.monotonic() - t0, 1)
        print(json.dumps(self.stats), flush=True)


async def long_flow(args):
    """One TCP connection paced at args.mbps: a 64 KB write every so often."""
    chunk = b"x" * 65536
    every = len(chunk) * 8 / (args.mbps * 1e6)
    sent, ok = 0, True
    t0 = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(SERVERS[0], SINK_PORT), 5)
        n = 0
        while time.monotonic() - t0 < args.duration:
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 10)  # a stalled flow fails, not hangs
            sent += len(chunk)
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * every - time.monotonic()))
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 10)
    except (OSError, asyncio.TimeoutError):
        ok = False
    secs = time.monotonic() - t0
    print(json.dumps({"long_ok": ok, "long_bytes": sent, "long_seconds": round(secs, 1),
                      "long_mbps": round(sent * 8 / secs / 1e6, 1)}), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "client", "long"])
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--tcp-rate", type=float, default=50, help="new TCP flows a second")
    ap.add_argument("--udp-rate", type=float, default=50, help="new UDP flows a second")
    ap.add_argument("--tcp-bytes", type=int, default=4096)
    ap.add_argument("--udp-datagrams", type=int, default=3)
    ap.add_argument("--mbps", type=float, default=50, help="rate of the long flow")
    args = ap.parse_args()
    if args.mode == "server":
        asyncio.run(server())
    elif args.mode == "client":
        asyncio.run(Client(args).run())
    else:
        asyncio.run(long_flow(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
