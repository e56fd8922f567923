"""Open an archive object store by URL: a local directory (default) or S3."""

from __future__ import annotations

from .base import Store
from .local import LocalStore


def open_store(url: str, **options) -> Store:
    """Open ``/path``, ``file:///path`` or ``s3://bucket/prefix``.

    ``options`` go to the S3 store (storage classes, SSE, concurrency, endpoint).
    """
    from ..errors import ConfigError

    if not url:
        raise ConfigError("repository: empty URL; use a directory or s3://bucket/prefix")
    if url.startswith("s3://"):
        from .s3 import S3Store

        rest = url[5:]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ConfigError(f"repository: {url!r} has no bucket (s3://bucket/prefix)")
        return S3Store(bucket, prefix, **options)
    if url.startswith("file://"):
        url = url[7:]
    if "://" in url:
        raise ConfigError(f"repository: unsupported scheme in {url!r}; use a path or s3://")
    return LocalStore(url)


__all__ = ["Store", "LocalStore", "open_store"]
