"""A git repository served over git's dumb HTTP protocol on loopback."""

from __future__ import annotations

import functools
import subprocess
import threading
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
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


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve_dir(path: Path):
    """Serve `path` on 127.0.0.1:<free port>; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
