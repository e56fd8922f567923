"""A chunk's id and its blob: the stored form of a chunk.

A blob is one codec byte followed by the payload: ``0`` raw, ``1`` zstd. Chunks
that do not shrink by at least ``RAW_MARGIN`` are stored raw. A cheap test comes
first: three small samples of a chunk compressed at zstd's fastest level; when none
shrinks, the chunk is stored raw without a full pass of zstd. Already compressed
data (NetCDF-4/HDF5 with deflate, Zarr blosc chunks, .gz, .zip, images) then costs
a hash and a copy, and nothing on restore.

Reader processes import this module and little else (their memory counts).
"""

from __future__ import annotations

import threading

import blake3
import zstandard

from .errors import IntegrityError

CODEC_RAW = 0
CODEC_ZSTD = 1
RAW_MARGIN = 0.97
SAMPLE = 8 * 1024         # bytes per sample of the incompressibility test
SAMPLE_MARGIN = 0.99      # samples this close to their size: the chunk is stored raw
SAMPLED_FROM = 64 * 1024  # chunks from this size are tested first
MAX_CHUNK = 64 * 1024 * 1024  # the largest chunk (ChunkerParams.max_size's bound)


def chunk_id(data) -> bytes:
    """The 32-byte BLAKE3 id of a chunk's plaintext."""
    return blake3.blake3(data).digest()


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


def encode_parts(data, level: int) -> tuple[int, object]:
    """(codec byte, payload) of a chunk's blob: zstd, or ``data`` itself (no copy)
    when zstd does not pay. The blob is the codec byte followed by the payload."""
    if level > 0 and not looks_incompressible(data):
        packed = _compressor(level).compress(data)
        if len(packed) < len(data) * RAW_MARGIN:
            return CODEC_ZSTD, packed
    return CODEC_RAW, data


def looks_incompressible(data) -> bool:
    """Whether samples of ``data`` (its start, middle and end) all fail to shrink
    under zstd level 1: a few microseconds, where a full pass over an incompressible
    megabyte costs about a millisecond. Data compressible anywhere sampled is
    compressed in full."""
    n = len(data)
    if n < SAMPLED_FROM:
        return False
    fast = _compressor(1)
    view = memoryview(data)
    for at in (0, (n - SAMPLE) // 2, n - SAMPLE):
        if len(fast.compress(view[at:at + SAMPLE])) < SAMPLE * SAMPLE_MARGIN:
            return False
    return True


def encode(data, level: int) -> bytes:
    """Compress a chunk into a blob, or keep it raw when zstd does not pay."""
    codec, payload = encode_parts(data, level)
    return bytes((codec,)) + bytes(payload)


def decode(blob, expected_id: bytes | None = None,
           raw_len: int | None = None) -> bytes | memoryview:
    """Decode a blob and verify its BLAKE3 id; raise IntegrityError on any mismatch.
    A stored (raw) chunk comes back as a view of ``blob``, not a copy: restores of
    already-compressed files write it straight from the pack's mapped range."""
    if not blob:
        raise IntegrityError("empty blob")
    codec = blob[0]
    payload = memoryview(blob)[1:]
    try:
        if codec == CODEC_RAW:
            data = payload
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
