"""The rules every lens HTTP client follows, in one place.

Pure functions decide (URL building and quoting, which calls may be retried,
what an error says); ``PeerClient`` is the one async adapter over tornado's
``AsyncHTTPClient`` that applies them, and ``Sync`` runs the same client from
synchronous code (the CLI, archive threads) on a private event loop.

- every path part is quoted (``quote(name, safe='')``): a name with ``/`` or
  ``?`` stays one part;
- a hub token travels as ``Authorization: token ...``;
- every request has a timeout (connect and whole request);
- connection errors and 5xx answers are retried (with a short backoff) only
  for idempotent calls: GET, HEAD, PUT, DELETE, or a call carrying an
  idempotency key (sent as the ``Idempotency-Key`` header); a timeout is not
  retried (it already used the caller's time);
- every failure is one error type, ``PeerError``, with the HTTP status and the
  peer's own JSON ``message``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.simple_httpclient import HTTPTimeoutError

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})


class PeerError(RuntimeError):
    """A call to a peer (hub, lens service, gateway) failed.

    ``status`` is the peer's HTTP status, or 503 when it could not be reached
    (``unreachable``) and 504 when it did not answer in time (``timed_out``);
    ``message`` is the peer's JSON ``message`` (or its text), or says which peer
    could not be reached: it can be shown to a user as it is.
    """

    def __init__(self, peer: str, status: int, message: str, *, method: str = "", url: str = "",
                 unreachable: bool = False, timed_out: bool = False):
        self.peer, self.status, self.message = peer, int(status), message
        self.method, self.url = method, url
        self.unreachable, self.timed_out = unreachable, timed_out
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.method} {self.url}".strip()
        if self.unreachable or self.timed_out:
            return f"{self.message} ({where})" if where else self.message
        return f"{self.peer} answered HTTP {self.status}" + (f" to {where}" if where else "") + f": {self.message}"

    @property
    def transient(self) -> bool:
        """Worth trying again later (down, slow, or a server-side failure)."""
        return self.unreachable or self.timed_out or self.status in RETRY_STATUSES or self.status in (408, 429)


# -- pure rules -------------------------------------------------------------
def quote_part(part) -> str:
    """One path segment, whatever it contains."""
    return quote(str(part), safe="")


def path(*parts, params: dict | None = None) -> str:
    """``path("users", name, "servers", server)`` -> ``users/NAME/servers/SERVER`` (each part
    quoted); ``params`` (None values dropped) become the query string."""
    out = "/".join(quote_part(p) for p in parts)
    query = {k: v for k, v in (params or {}).items() if v is not None}
    return out + ("?" + urlencode(query) if query else "")


def join_url(base: str, rel: str) -> str:
    """``base`` (with or without a trailing slash) + an already-built relative path."""
    return base.rstrip("/") + "/" + rel.lstrip("/")


def is_idempotent(method: str, idempotency_key: str | None = None) -> bool:
    return method.upper() in IDEMPOTENT_METHODS or bool(idempotency_key)


def should_retry(method: str, idempotency_key: str | None, status: int | None, attempt: int,
                 attempts: int) -> bool:
    """After ``attempt`` (1-based) failed with ``status`` (None: no connection), try again?"""
    if attempt >= attempts or not is_idempotent(method, idempotency_key):
        return False
    return status is None or status in RETRY_STATUSES


def backoff_seconds(attempt: int, base: float = 0.2, cap: float = 2.0) -> float:
    return min(cap, base * 2 ** (attempt - 1))


def error_message(status: int, body: bytes | None) -> str:
    """The peer's JSON ``message`` (tornado and the lens service send one), else its text."""
    text = (body or b"").decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return text.strip()[:300] or f"HTTP {status}"


def headers_for(token: str, idempotency_key: str | None, has_body: bool,
                scheme: str = "token") -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"{scheme} {token}"
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    if has_body:
        headers["Content-Type"] = "application/json"
    return headers


def decode(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


@dataclass(frozen=True)
class Response:
    status: int
    data: Any


# -- the one adapter ----------------------------------------------------------
class PeerClient:
    """A peer at ``base_url``, called with ``token``; subclasses add the peer's routes."""

    peer = "peer"
    missing_url = "its URL is not configured"
    auth_scheme = "token"  # Authorization: <scheme> <token>

    def __init__(self, base_url: str, token: str = "", *, timeout: float = 30.0, attempts: int = 3,
                 backoff: float = 0.2):
        self.base_url = base_url or ""
        self.token = token or ""
        self.timeout, self.attempts, self.backoff = float(timeout), max(1, int(attempts)), backoff

    def url(self, rel: str) -> str:
        return join_url(self.base_url, rel)

    async def call(self, method: str, rel: str, body: Any = None, *, idempotency_key: str | None = None,
                   accept: tuple[int, ...] = (), request_timeout: float | None = None) -> Response:
        """One logical call with the retry rules. Statuses >= 400 raise ``PeerError`` unless
        listed in ``accept``."""
        method = method.upper()
        if not self.base_url.strip("/"):
            raise PeerError(self.peer, 503, f"{self.peer}: {self.missing_url}", method=method, url=rel,
                            unreachable=True)
        url = self.url(rel)
        wait = self.timeout if request_timeout is None else float(request_timeout)
        payload = json.dumps(body) if body is not None else None
        if payload is None and method in ("POST", "PUT", "PATCH"):
            payload = ""
        attempt = 0
        while True:
            attempt += 1
            request = HTTPRequest(
                url, method=method, body=payload, headers=headers_for(self.token, idempotency_key, body is not None, self.auth_scheme),
                request_timeout=wait, connect_timeout=wait, allow_nonstandard_methods=True,
            )
            client = AsyncHTTPClient(force_instance=True)
            status: int | None
            try:
                resp = await client.fetch(request, raise_error=False)
                status, failure = resp.code, resp.error
            except (HTTPClientError, OSError) as exc:  # refused, reset, no route
                status, failure = 599, exc
            except ValueError as exc:  # no request could be made: "ftp://x", "hub:8000" (a bad setting)
                raise PeerError(self.peer, 503, f"{self.peer} unreachable: {exc}", method=method, url=url,
                                unreachable=True) from None
            finally:
                client.close()
            if status == 599:  # no HTTP answer: a timeout, or no connection
                if isinstance(failure, HTTPTimeoutError):
                    raise PeerError(self.peer, 504, f"{self.peer} did not answer within {wait:g} s", method=method, url=url,
                                    timed_out=True) from None
                status, failure = None, str(failure) or type(failure).__name__
            if status is not None and status < 500 or not should_retry(
                    method, idempotency_key, status, attempt, self.attempts):
                break
            await asyncio.sleep(backoff_seconds(attempt, self.backoff))
        if status is None:
            raise PeerError(self.peer, 503, f"{self.peer} unreachable: {failure}", method=method, url=url, unreachable=True)
        if status >= 400 and status not in accept:
            raise PeerError(self.peer, status, error_message(status, resp.body), method=method, url=url)
        return Response(status, decode(resp.body))

    async def request(self, method: str, rel: str, body: Any = None, **kwargs) -> Any:
        """The decoded JSON answer (None for an empty body)."""
        return (await self.call(method, rel, body, **kwargs)).data

    async def get_or_none(self, rel: str, **kwargs) -> Any:
        """GET, with None for a 404."""
        resp = await self.call("GET", rel, accept=(404,), **kwargs)
        return None if resp.status == 404 else resp.data


class Sync:
    """Run a ``PeerClient``'s coroutine methods from synchronous code, on a private loop.

    ``Sync(HubClient(url, token)).get_user("ann")``. Not for use inside a running loop.
    """

    def __init__(self, client: PeerClient):
        self.client = client
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, coro):
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def __getattr__(self, name: str):
        attr = getattr(self.client, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr
        return lambda *args, **kwargs: self.run(attr(*args, **kwargs))

    def close(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.close()
