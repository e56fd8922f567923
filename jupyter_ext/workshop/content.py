"""Course content: ``--content GIT_URL[@ref]`` and the nbgitpuller links."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode, urlparse

from .model import WorkshopError

REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
DIR_RE = re.compile(r"[^A-Za-z0-9._-]+")


def parse_content(text: str | None) -> tuple[str | None, str | None]:
    """'https://host/course.git@v2' -> ('https://host/course.git', 'v2'); the ref
    is optional (nbgitpuller then uses the repository's default branch)."""
    if not text:
        return None, None
    repo, ref = text, None
    tail = text.rsplit("/", 1)[-1]
    if "@" in tail:
        repo, ref = text.rsplit("@", 1)
    url = urlparse(repo)
    if url.scheme not in ("http", "https") or not url.netloc or not url.path.strip("/"):
        raise WorkshopError(f"--content {text!r}: give an http(s) git URL, optionally followed by @branch-or-tag")
    if ref is not None and (not REF_RE.match(ref) or ".." in ref):
        raise WorkshopError(f"--content: invalid ref {ref!r} (letters, digits, '.', '_', '/', '-')")
    return repo, ref


def target_dir(repo: str) -> str:
    """The folder nbgitpuller clones into (its default: the repository's name)."""
    name = urlparse(repo).path.rstrip("/").rsplit("/", 1)[-1]
    name = name[:-4] if name.endswith(".git") else name
    return DIR_RE.sub("-", name) or "content"


def pull_query(repo: str, ref: str | None, interface: str = "lab") -> str:
    params = {"repo": repo}
    if ref:
        params["branch"] = ref
    params["targetpath"] = target_dir(repo)
    params["urlpath"] = f"{interface}/tree/{quote(target_dir(repo))}"
    return urlencode(params)


def server_pull_path(repo: str, ref: str | None) -> str:
    """A user server's default_url that pulls the content, then opens it in Lab."""
    return "/git-pull?" + pull_query(repo, ref)


def hub_pull_link(public_url: str, repo: str, ref: str | None) -> str:
    """The ready link to hand out: log in, start the server, pull, open."""
    return public_url.rstrip("/") + "/hub/user-redirect/git-pull?" + pull_query(repo, ref)
