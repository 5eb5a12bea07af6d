"""Sockets in a named network namespace, for e2e scripts that play both ends
of a connection in one process (setns around the socket's creation: the
socket stays in the namespace it was made in)."""
import ctypes
import os
import socket

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def socket_in(netns, family, kind=socket.SOCK_STREAM, bind=None):
    """A socket of `family` (4 or 6) and `kind` created in `netns`, bound to
    `bind` there when given."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")
        s = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, kind)
        if bind is not None:
            s.bind(bind)
    finally:
        if _libc.setns(own, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(target)
        os.close(own)
    return s


def recv_exactly(sock, n):
    """Exactly n bytes from a stream socket; EOFError if it closes first."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)
