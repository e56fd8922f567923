"""Course content: ``--content GIT_URL[@ref]`` and the nbgitpuller links.

nbgitpuller hands ``repo`` and ``branch`` to git as arguments; a value git could
read as an option (``--upload-pack=...``), a transport that runs commands
(``ext::``) or a local path (``file://``) must never reach a link lens hands out
(the class of CVE-2021-39160). Every builder below re-checks what it is given,
so a link is never built from unchecked text, whatever its source."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode, urlsplit

from .model import WorkshopError

# A branch or tag: git's refname rules (git check-ref-format), restricted to a safe alphabet.
REF_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")  # fullmatch: "$" would let a final newline in
DIR_RE = re.compile(r"[^A-Za-z0-9._-]+")
# What a git http(s) URL needs: RFC 3986 unreserved and a few delimiters; no spaces,
# control characters, quotes, backslashes or shell metacharacters ( ; $ ( ) ` | & < > ).
URL_RE = re.compile(r"https?://[A-Za-z0-9._~%!*+,=:@/\[\]-]+")
HOST_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                     r"[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
USER_RE = re.compile(r"[A-Za-z0-9._~-]+")
MAX_URL = 1000


def check_repo(repo: str) -> str:
    """The repository URL if it is a plain http(s) git URL; else WorkshopError."""
    bad = f"--content {repo!r}: give an http(s) git URL, optionally followed by @branch-or-tag"
    if not isinstance(repo, str) or len(repo) > MAX_URL or not URL_RE.fullmatch(repo):
        raise WorkshopError(bad)
    url = urlsplit(repo)
    netloc = url.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    if userinfo and not USER_RE.fullmatch(userinfo):
        # user:password@ would put a secret in every link handed out
        raise WorkshopError(f"{bad} (a user name only; no password in the URL)")
    host = hostport
    if hostport.startswith("["):
        host, _, rest = hostport.partition("]")
        host += "]"
        port = rest[1:] if rest.startswith(":") else rest
    else:
        host, _, port = hostport.partition(":")
    if not HOST_RE.fullmatch(host) or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise WorkshopError(bad)
    if url.scheme not in ("http", "https") or not url.path.strip("/"):
        raise WorkshopError(bad)
    if any(part in (".", "..") for part in url.path.split("/")):
        raise WorkshopError(f"{bad} (no '.' or '..' path segments)")
    return repo


def check_ref(ref: str) -> str:
    """A branch or tag name git accepts as a refname that no git command can take for an option."""
    bad = f"--content: invalid ref {ref!r} (letters, digits, '.', '_', '/', '-'; not starting with '-')"
    if not isinstance(ref, str) or not REF_RE.fullmatch(ref):
        raise WorkshopError(bad)
    parts = ref.split("/")
    if (".." in ref or "@{" in ref or ref.endswith((".", "/", ".lock"))
            or any(not p or p.startswith((".", "-")) or p.endswith(".lock") for p in parts)):
        raise WorkshopError(bad)
    return ref


def parse_content(text: str | None) -> tuple[str | None, str | None]:
    """'https://host/course.git@v2' -> ('https://host/course.git', 'v2'); the ref
    is optional (nbgitpuller then uses the repository's default branch)."""
    if not text:
        return None, None
    repo, ref = text, None
    # the ref follows the last '@' of the path (a user name's '@' comes before it)
    scheme, sep, rest = text.partition("://")
    netloc, slash, path = rest.partition("/")
    if sep and "@" in path:
        path, ref = path.rsplit("@", 1)
        repo = f"{scheme}{sep}{netloc}{slash}{path}"
    check_repo(repo)
    if ref is not None:
        check_ref(ref)
    return repo, ref


def target_dir(repo: str) -> str:
    """The folder nbgitpuller clones into (its default: the repository's name), always
    a single plain name inside the user's home: never '.', '..' or a leading '-'."""
    name = urlsplit(repo).path.rstrip("/").rsplit("/", 1)[-1]
    name = name[:-4] if name.endswith(".git") else name
    name = DIR_RE.sub("-", name).lstrip(".-")
    return name or "content"


def pull_query(repo: str, ref: str | None, interface: str = "lab") -> str:
    check_repo(repo)
    params = {"repo": repo}
    if ref:
        params["branch"] = check_ref(ref)
    params["targetpath"] = target_dir(repo)
    params["urlpath"] = f"{interface}/tree/{quote(target_dir(repo))}"
    return urlencode(params)


def server_pull_path(repo: str, ref: str | None) -> str:
    """A user server's default_url that pulls the content, then opens it in Lab."""
    return "/git-pull?" + pull_query(repo, ref)


def hub_pull_link(public_url: str, repo: str, ref: str | None) -> str:
    """The ready link to hand out: log in, start the server, pull, open."""
    return public_url.rstrip("/") + "/hub/user-redirect/git-pull?" + pull_query(repo, ref)
