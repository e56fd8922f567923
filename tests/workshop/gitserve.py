"""A git repository served over HTTP on loopback by `git http-backend` (git's
smart HTTP protocol, what real git hosts speak; nbgitpuller's shallow clones
need it: the dumb protocol cannot do --depth)."""

from __future__ import annotations

import os
import subprocess
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_course_repo(root: Path, name: str = "course") -> Path:
    """A bare repo `name`.git with a README and a notebook on branch main."""
    work = root / f"{name}-work"
    work.mkdir(parents=True)
    (work / "README.md").write_text(f"# {name}\n\nWelcome to the workshop.\n")
    (work / "01-intro.ipynb").write_text(
        '{"cells":[{"cell_type":"markdown","metadata":{},"source":["# Lesson one"]}],'
        '"metadata":{},"nbformat":4,"nbformat_minor":5}\n'
    )
    git = ["git", "-c", "user.name=teacher", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    subprocess.run([*git, "-C", str(work), "add", "."], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "course material"], check=True)
    bare = root / "srv" / f"{name}.git"
    subprocess.run([*git, "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    return bare


class _GitHTTP(BaseHTTPRequestHandler):
    """CGI bridge to `git http-backend` (argv list, no shell)."""

    root = ""

    def log_message(self, *args):
        pass

    def _run(self):
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": self.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(": ")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _run


@contextmanager
def serve_dir(path: Path):
    """Serve the repositories under `path` on 127.0.0.1:<free port>; yields the base URL."""
    handler = type("Handler", (_GitHTTP,), {"root": str(path)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
