"""A chunk's id and its blob: the stored form of a chunk.

A blob is one codec byte followed by the payload: ``0`` raw, ``1`` zstd. Chunks
that do not shrink by at least ``RAW_MARGIN`` are stored raw. A cheap test comes
first: three small samples of a chunk compressed at zstd's fastest level; when none
shrinks, the chunk is stored raw without a full pass of zstd. Already compressed
data (NetCDF-4/HDF5 with deflate, Zarr blosc chunks, .gz, .zip, images) then costs
a hash and a copy, and nothing on restore.

The same samples pick the level: when they shrink only a little (to over
``FAST_FROM`` of their size: float fields, integer samples, noisy binary data),
the chunk is compressed at level 1, which finds what level 3 finds there in
well under half the time (float32 fields: 0.783 of their size at both levels;
1 MiB chunks of real and generated data, this machine: 1.3-1.7x the speed, the
repository 1.000x, at most 1.009x on smooth float64). Text and code shrink
further and keep the configured level, and so does everything when a level
above the default is configured (asked for its size).

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
FAST_LEVEL = 1            # the level for chunks whose samples shrink little ...
FAST_FROM = 0.7           # ... to over this share of their size, on average ...
FAST_BELOW = 4            # ... when the configured level is below this (the default,
                          # 3): a higher one was asked for its size, and gets it
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
    use = level_for(data, level) if level else 0
    if use:
        packed = _compressor(use).compress(data)
        if len(packed) < len(data) * RAW_MARGIN:
            return CODEC_ZSTD, packed
    return CODEC_RAW, data


def _sample_sizes(data) -> list[int] | None:
    """Sizes under zstd level 1 of samples of ``data`` (its start, middle and end):
    a few microseconds, where a full pass over a megabyte costs milliseconds. None
    for a chunk under ``SAMPLED_FROM`` (zstd decides alone)."""
    n = len(data)
    if n < SAMPLED_FROM:
        return None
    fast = _compressor(1)
    view = memoryview(data)
    return [len(fast.compress(view[at:at + SAMPLE])) for at in (0, (n - SAMPLE) // 2, n - SAMPLE)]


def _shrinks(size: int) -> bool:
    return size < SAMPLE * SAMPLE_MARGIN


def looks_incompressible(data) -> bool:
    """Whether every sample of ``data`` fails to shrink under zstd level 1. Data
    compressible anywhere sampled is compressed in full."""
    sizes = _sample_sizes(data)
    return sizes is not None and not any(map(_shrinks, sizes))


def level_for(data, level: int) -> int:
    """The zstd level for a chunk, ``level`` being the configured one (not 0): 0
    when it looks incompressible (stored raw), ``FAST_LEVEL`` when its samples
    shrink little (level 3 gains nothing there, at twice the time), else
    ``level`` (and always a configured level of ``FAST_BELOW`` or more)."""
    sizes = _sample_sizes(data)
    if sizes is None:
        return level
    if not any(map(_shrinks, sizes)):
        return 0
    if level < FAST_BELOW and sum(sizes) > len(sizes) * SAMPLE * FAST_FROM:
        return min(level, FAST_LEVEL)
    return level


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
