"""A tiny real HTTP server for the client tests: scripted answers, every request recorded."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Peer:
    """``with Peer() as peer``: ``peer.script[(method, path)] = [(status, body), ...]`` answers
    in turn (the last one repeats); ``/slow`` sleeps ``peer.delay``; anything else echoes."""

    def __init__(self):
        self.script: dict[tuple[str, str], list[tuple[int, dict]]] = {}
        self.calls: list[dict] = []
        self.delay = 2.0
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                call = {"at": time.monotonic(), "method": self.command, "path": self.path, "headers": dict(self.headers),
                        "body": json.loads(body) if body else None}
                peer.calls.append(call)
                if self.path.split("?")[0].endswith("/slow"):
                    time.sleep(peer.delay)
                answers = peer.script.get((self.command, self.path))
                if answers:
                    status, data = answers.pop(0) if len(answers) > 1 else answers[0]
                else:
                    status, data = 200, {"path": self.path, "method": self.command}
                # bytes: sent as they are (an HTML error page, not a lens peer's JSON)
                raw = data if isinstance(data, bytes) else json.dumps(data).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html" if isinstance(data, bytes) else "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/base/"

    def calls_to(self, method: str, path: str) -> list[dict]:
        return [c for c in self.calls if c["method"] == method and c["path"] == path]

    def __enter__(self) -> Peer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
