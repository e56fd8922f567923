"""The desktop profile in tests and benchmarks: is it installed, and a minimal RFB client
over its websocket (what noVNC speaks), to check who may connect and what counts as use."""

from __future__ import annotations

import importlib.util
import shutil
import struct

DESKTOP_MISSING = "the desktop is not installed: run `make desktop`"


def desktop_installed() -> bool:
    return all(shutil.which(p) for p in ("vncserver", "xfce4-session", "dbus-launch", "xfce4-terminal")) \
        and importlib.util.find_spec("jupyter_remote_desktop_proxy") is not None


def websocket_url(stack, name: str) -> str:
    return stack.url.replace("http://", "ws://", 1) + f"/user/{name}/desktop-websockify/"


class RFBClient:
    """Just enough of RFB 3.8 (security type None) to reach ServerInit and send events."""

    def __init__(self, url: str, token: str | None, timeout: float = 60):
        import websocket  # websocket-client

        header = [f"Authorization: token {token}"] if token else []
        self.ws = websocket.create_connection(url, header=header, timeout=timeout,
                                              subprotocols=["binary"])
        self.buffer = b""

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self.ws.recv()
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def send(self, data: bytes) -> None:
        import websocket

        self.ws.send(data, opcode=websocket.ABNF.OPCODE_BINARY)

    def handshake(self) -> tuple[int, int]:
        """Version, security None, ClientInit; return the framebuffer's (width, height)."""
        version = self.read(12)
        assert version.startswith(b"RFB 003."), version
        self.send(b"RFB 003.008\n")
        count = self.read(1)[0]
        types = self.read(count)
        assert 1 in types, f"the server offers no security type None: {list(types)}"
        self.send(b"\x01")
        assert struct.unpack(">I", self.read(4))[0] == 0, "security handshake failed"
        self.send(b"\x01")  # ClientInit: shared
        width, height = struct.unpack(">HH", self.read(4))
        self.read(16)  # pixel format
        self.read(struct.unpack(">I", self.read(4))[0])  # desktop name
        return width, height

    def pointer(self, x: int, y: int, buttons: int = 0) -> None:
        self.send(struct.pack(">BBHH", 5, buttons, x, y))

    def close(self) -> None:
        self.ws.close()
