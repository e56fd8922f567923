"""nbgitpuller links cannot inject git options or commands (the class of CVE-2021-39160).

Two layers: lens's link builder (``lens workshop create --content``, and every
builder of a pull link) refuses hostile repository URLs, refs and paths with a
clear error; and the nbgitpuller installed in lens's venv, asked directly by a
crafted ``git-pull`` URL on a real user server, runs nothing.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import pytest
import requests

from jupyter_ext.workshop.content import (
    check_ref,
    check_repo,
    hub_pull_link,
    parse_content,
    server_pull_path,
    target_dir,
)
from jupyter_ext.workshop.model import WorkshopError
from tests.support.hub import REPO
from tests.workshop.gitserve import make_course_repo

MARKER_DIR = Path(tempfile.gettempdir())


def marker() -> Path:
    """A path in the world-writable temp dir: any account an injected command runs as could create it."""
    return MARKER_DIR / f"lens-gitpuller-pwned-{secrets.token_hex(6)}"


def hostile_contents(m: Path) -> list[str]:
    return [
        f"--upload-pack=touch {m}",
        f"-c core.sshCommand=touch {m}",
        f"ext::sh -c touch% {m}",
        "ext::sh -c touch% /tmp/x",
        "file:///etc",
        "file:///etc/passwd",
        "/etc",
        "git@github.com:org/course.git",
        "ssh://git@github.com/org/course.git",
        f"https://h/course.git\n--upload-pack=touch {m}",
        "https://h/course.git\r\n",
        f"https://h/course.git --upload-pack=touch {m}",
        f"https://h/course.git;touch {m}",
        f"https://h/$(touch {m}).git",
        f"https://h/`touch {m}`.git",
        "https://h/course.git|id",
        "https://h/course.git&id",
        "https://h/'course'.git",
        'https://h/"course".git',
        "https://h\\evil/course.git",
        "https://h/..",
        "https://h/org/../../course.git",
        "https://h/./",
        "https://user:secret@h/course.git",
        "https://-oProxyCommand=id/course.git",
        "https:///course.git",
        "http://h:99999/course.git",
        # refs
        f"https://h/course.git@--upload-pack=touch {m}",
        "https://h/course.git@-b",
        "https://h/course.git@main;id",
        "https://h/course.git@$(id)",
        "https://h/course.git@a..b",
        "https://h/course.git@main.lock",
        "https://h/course.git@.hidden",
        "https://h/course.git@a/.b",
        "https://h/course.git@a/-b",
        "https://h/course.git@main/",
        "https://h/course.git@main.",
        "https://h/course.git@ma in",
        "https://h/course.git@main\n",
    ]


def test_the_link_builder_refuses_hostile_urls_refs_and_paths():
    m = marker()
    for text in hostile_contents(m):
        with pytest.raises(WorkshopError, match="--content") as err:
            parse_content(text)
        assert "http(s) git URL" in str(err.value) or "invalid ref" in str(err.value), text
    # every builder re-checks its input: a row read back from the database is no way around it
    for repo, ref in [(f"--upload-pack=touch {m}", None), ("ext::sh -c id", None), ("file:///etc", None),
                      ("https://h/c.git\n-c core.sshCommand=id", None), ("https://h/c.git", "--upload-pack=id"),
                      ("https://h/c.git", "main\n--foo"), ("https://h/c.git", "a/../b")]:
        with pytest.raises(WorkshopError):
            hub_pull_link("https://hub.example", repo, ref)
        with pytest.raises(WorkshopError):
            server_pull_path(repo, ref)
    # the folder nbgitpuller clones into is one plain name in the home: no '..', no leading '-' or '.'
    for repo in ("https://h/-rf.git", "https://h/.ssh", "https://h/..git", "https://h/.git"):
        name = target_dir(repo)
        assert name and "/" not in name and name not in (".", "..") and name[0] not in ".-", (repo, name)
    # what must keep working still does
    assert parse_content("https://git.example.org/bio101.git@main") == ("https://git.example.org/bio101.git", "main")
    assert parse_content("http://127.0.0.1:8080/x/course.git@release/v1.2") == (
        "http://127.0.0.1:8080/x/course.git", "release/v1.2")
    assert check_repo("https://user@[::1]:8443/org/course.git") and check_ref("v1.0-rc_2")
    assert not m.exists()


def test_lens_workshop_create_refuses_them_with_a_clear_error(tmp_path):
    m = marker()
    env = {**os.environ, "LENS_STATE_DIR": str(tmp_path / "state")}
    for text in (f"--upload-pack=touch {m}", f"https://h/course.git@--upload-pack=touch {m}",
                 f"https://h/course.git\n--upload-pack=touch {m}", "file:///etc", f"ext::sh -c touch% {m}",
                 "https://h/c.git;id"):
        proc = subprocess.run(
            [sys.executable, "-c",
             "import sys; from jupyter_ext.cli.main import main; sys.exit(main(sys.argv[1:]))",
             "workshop", "--state", str(tmp_path / "state"), "--hub-url", "http://127.0.0.1:9",
             "create", "evil", "--seats", "1", "--expires", "+1d", f"--content={text}"],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
        assert proc.returncode == 2, (text, proc.returncode, proc.stdout, proc.stderr)
        assert "--content" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert "content link" not in proc.stdout
    assert not m.exists()


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:3] if p.isdigit())


def test_the_installed_nbgitpuller_is_not_vulnerable():
    # GHSA-mq5p-2mcr-m52j: nbgitpuller < 0.10.2 passed the repo URL to git where it
    # could be read as an option; 0.10.2 puts "--" before it.
    assert _version_tuple(version("nbgitpuller")) >= (0, 10, 2), version("nbgitpuller")
    import inspect

    from nbgitpuller import pull

    source = inspect.getsource(pull.GitPuller)
    assert '"--", self.git_url' in source or "'--', self.git_url" in source


# -- against a real user server --------------------------------------------------------------


@pytest.fixture(scope="module")
def puller(stack):
    name = f"git-{secrets.token_hex(3)}"
    token = stack.create_user(name)
    assert stack.spawn(name, "lab", token=token).status_code in (201, 202)
    yield name, token
    stack.stop_server(name)
    if os.geteuid() == 0:
        from tests.support.unix import remove_account

        remove_account(f"jupyter-{name}")


def pull_api(stack, name, token, **params) -> str:
    with requests.get(f"{stack.url}/user/{name}/git-pull/api", params=params,
                      headers={"Authorization": f"token {token}"}, stream=True, timeout=60) as events:
        assert events.status_code == 200, events.text
        return "".join(chunk.decode(errors="replace") for chunk in events.iter_content(None))


def test_the_marker_catches_an_injected_upload_pack(tmp_path):
    """Control: the payload is live when git does read it as an option."""
    m = marker()
    bare = make_course_repo(tmp_path)
    subprocess.run(["git", "ls-remote", f"--upload-pack=touch {m}", str(bare)], capture_output=True, timeout=30)
    try:
        assert m.exists()
    finally:
        m.unlink(missing_ok=True)


def test_a_crafted_git_pull_url_runs_nothing_on_a_real_server(stack, puller):
    name, token = puller
    m = marker()
    good = "https://127.0.0.1:9/org/course.git"  # nothing listens: only option parsing is at stake
    cases = [
        {"repo": f"--upload-pack=touch {m}", "branch": "main"},
        {"repo": f"--upload-pack=touch {m}"},  # no branch: nbgitpuller asks ls-remote for the default
        {"repo": f"-c core.sshCommand=touch {m}", "branch": "main"},
        {"repo": f"ext::sh -c touch% {m}", "branch": "main"},
        {"repo": f"ext::sh -c touch% {m}"},
        {"repo": good, "branch": f"--upload-pack=touch {m}"},
        {"repo": good, "branch": f"-c core.sshCommand=touch {m}"},
        {"repo": good, "branch": "main", "targetpath": f"--upload-pack=touch {m}"},
        {"repo": f"ssh://-oProxyCommand=touch%20{m}/x", "branch": "main"},
    ]
    for i, params in enumerate(cases):
        params.setdefault("targetpath", f"pull-{i}")
        body = pull_api(stack, name, token, **params)
        # nbgitpuller answers with an event stream that ends in an error: git refused it
        assert '"phase": "error"' in body, (params, body[-500:])
        assert '"phase": "finished"' not in body, (params, body[-500:])
        assert not m.exists(), f"{params} ran a command"
    # the HTML page (what a link opens) renders the hostile values inert, and still runs nothing
    r = requests.get(f"{stack.url}/user/{name}/git-pull", params={"repo": f"--upload-pack=touch {m}"},
                     headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 200 and "<script>touch" not in r.text
    assert not m.exists()
