"""Course content: nbgitpuller pulls a local repository served over HTTP on loopback."""

from __future__ import annotations

import os
import time

import pytest
import requests

from jupyter_ext.workshop.homes import seat_home
from tests.workshop.conftest import fresh_seats, lens
from tests.workshop.gitserve import make_course_repo, serve_dir

pytestmark = pytest.mark.integration


def test_content_is_pulled_on_first_login(wstack, tmp_path):
    fresh_seats("geo-01")
    bare = make_course_repo(tmp_path)
    with serve_dir(bare.parent) as base:
        repo = f"{base}/course.git"
        r = lens(wstack, "create", "geo", "--seats", "1", "--expires", "+1d", "--content", f"{repo}@main")
        link = next(line.split(": ", 1)[1].strip() for line in r.stdout.splitlines() if "content link:" in line)
        assert link.startswith(f"{wstack.url}/hub/user-redirect/git-pull?repo=")
        assert "branch=main" in link and "urlpath=lab%2Ftree%2Fcourse" in link
        token = wstack.create_user("geo-01")
        assert wstack.spawn("geo-01", "lab", token=token).status_code in (201, 202)
        try:
            auth = {"Authorization": f"token {token}"}
            # the server's default URL is the pull link: /user/geo-01/ redirects there
            r = requests.get(f"{wstack.url}/user/geo-01/", headers=auth, allow_redirects=False, timeout=20)
            assert r.status_code == 302 and "/user/geo-01/git-pull?repo=" in r.headers["Location"]
            page = requests.get(r.headers["Location"] if r.headers["Location"].startswith("http")
                                else wstack.url + r.headers["Location"], headers=auth, timeout=30)
            assert page.status_code == 200 and "course.git" in page.text
            # the page's script calls the pull API (an event stream); do what it does
            api = f"{wstack.url}/user/geo-01/git-pull/api"
            with requests.get(api, params={"repo": repo, "branch": "main", "targetpath": "course"},
                              headers=auth, stream=True, timeout=60) as events:
                body = "".join(chunk.decode() for chunk in events.iter_content(None))
            assert '"phase": "finished"' in body, body[-500:]
            home = seat_home("geo-01", wstack.state)
            deadline = time.monotonic() + 10
            while not (home / "course" / "01-intro.ipynb").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert (home / "course" / "README.md").read_text().startswith("# course")
            if os.geteuid() == 0:  # owned by the seat's own unix account
                import pwd

                assert (home / "course").stat().st_uid == pwd.getpwnam("jupyter-geo-01").pw_uid
            r = requests.get(f"{wstack.url}/user/geo-01/api/contents/course", headers=auth, timeout=20)
            assert {c["name"] for c in r.json()["content"]} >= {"README.md", "01-intro.ipynb"}
        finally:
            wstack.stop_server("geo-01")
