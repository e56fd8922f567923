"""Messages between lens and its helper processes (readers, writers): private pipes
between two processes of one user. A message is an 8-byte little-endian length
and a ``marshal`` body; bulk bytes follow a message raw when it says so."""

from __future__ import annotations

import marshal
import os

HEAD = 8


def frame(obj) -> bytes:
    body = marshal.dumps(obj)
    return len(body).to_bytes(HEAD, "little") + body


def read_message(stream):
    """The next message from a binary stream, or None at its end."""
    head = stream.read(HEAD)
    if len(head) < HEAD:
        return None
    n = int.from_bytes(head, "little")
    body = stream.read(n)
    if len(body) < n:
        return None
    return marshal.loads(body)


def write_all(fd: int, parts: list) -> None:
    """``writev`` until every part is out (a pipe may take less at a time)."""
    views = [memoryview(p) for p in parts if len(p)]
    while views:
        n = os.writev(fd, views[:512])  # under IOV_MAX
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]
