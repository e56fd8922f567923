"""Content-defined chunking (FastCDC), BLAKE3 chunk ids and zstd blobs.

A blob is one codec byte followed by the payload: ``0`` raw, ``1`` zstd. Chunks
that do not shrink by at least ``RAW_MARGIN`` are stored raw, so already
compressed data costs one pass of zstd and nothing on restore.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import blake3
import zstandard
from fastcdc import fastcdc

from .errors import ConfigError, IntegrityError

CODEC_RAW = 0
CODEC_ZSTD = 1
RAW_MARGIN = 0.97
READ_SIZE = 4 * 1024 * 1024
MAX_CHUNK = 64 * 1024 * 1024  # ChunkerParams.validate's upper bound on max_size


@dataclass(frozen=True)
class ChunkerParams:
    """FastCDC sizes. They are fixed per repository, so dedup works across archives."""

    min_size: int = 256 * 1024
    avg_size: int = 1024 * 1024
    max_size: int = 4 * 1024 * 1024

    def validate(self) -> ChunkerParams:
        if not 64 <= self.min_size <= self.avg_size <= self.max_size <= 64 * 1024 * 1024:
            raise ConfigError(
                "chunker: need 64 <= min_size <= avg_size <= max_size <= 64 MiB, got "
                f"{self.min_size}/{self.avg_size}/{self.max_size}")
        if self.avg_size < 256:
            raise ConfigError("chunker.avg_size: must be at least 256")
        return self

    def as_dict(self) -> dict:
        return {"min_size": self.min_size, "avg_size": self.avg_size, "max_size": self.max_size}


def chunk_id(data) -> bytes:
    """The 32-byte BLAKE3 id of a chunk's plaintext."""
    return blake3.blake3(data).digest()


def iter_chunks(fileobj, params: ChunkerParams, read_size: int = READ_SIZE,
                size_hint: int | None = None):
    """Yield memoryviews of the content-defined chunks of a binary file object.

    ``size_hint`` (the scanned size) sizes the first read: a small file is not read
    into a ``read_size`` buffer (an mmap and a copy per file)."""
    read_size = max(read_size, params.max_size)
    first = read_size if size_hint is None else max(1, min(read_size, size_hint))
    tail = b""
    while True:
        data = fileobj.read(first)
        first = read_size
        eof = not data
        buf = tail + data if tail else data
        if not buf:
            return
        view = memoryview(buf)
        end = 0
        for c in fastcdc(buf, params.min_size, params.avg_size, params.max_size):
            stop = c.offset + c.length
            if not eof and stop == len(buf) and c.length < params.max_size:
                break  # the boundary may move once more data arrives
            yield view[c.offset:stop]
            end = stop
        if eof:
            return
        tail = bytes(view[end:])


_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache = getattr(_local, "c", None)
    if cache is None:
        cache = _local.c = {}
    comp = cache.get(level)
    if comp is None:
        comp = cache[level] = zstandard.ZstdCompressor(level=level)
    return comp


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "d", None)
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    return d


def encode(data, level: int) -> bytes:
    """Compress a chunk into a blob, or keep it raw when zstd does not pay."""
    if level > 0:
        packed = _compressor(level).compress(data)
        if len(packed) < len(data) * RAW_MARGIN:
            return bytes((CODEC_ZSTD,)) + packed
    return bytes((CODEC_RAW,)) + bytes(data)


def decode(blob, expected_id: bytes | None = None, raw_len: int | None = None) -> bytes:
    """Decode a blob and verify its BLAKE3 id; raise IntegrityError on any mismatch."""
    if not blob:
        raise IntegrityError("empty blob")
    codec = blob[0]
    payload = memoryview(blob)[1:]
    try:
        if codec == CODEC_RAW:
            data = bytes(payload)
        elif codec == CODEC_ZSTD:
            # bound the output by what the index says (never by the frame header)
            limit = MAX_CHUNK if raw_len is None else raw_len
            if not 0 <= limit <= MAX_CHUNK:
                raise IntegrityError(f"chunk length {limit} is outside 0..{MAX_CHUNK}")
            declared = zstandard.frame_content_size(payload)
            if declared > limit:
                raise IntegrityError(f"chunk declares {declared} bytes, index says {limit}")
            data = _decompressor().decompress(payload, max_output_size=limit)
        else:
            raise IntegrityError(f"unknown codec byte {codec}")
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"corrupt zstd blob: {exc}") from None
    if raw_len is not None and len(data) != raw_len:
        raise IntegrityError(f"chunk length {len(data)} != {raw_len}")
    if expected_id is not None and chunk_id(data) != expected_id:
        raise IntegrityError("chunk hash mismatch")
    return data
