"""A chunk's id and its blob: the stored form of a chunk.

A blob is one codec byte followed by the payload: ``0`` raw, ``1`` zstd. Chunks
that do not shrink by at least ``RAW_MARGIN`` are stored raw. A cheap test comes
first: three small samples of a chunk compressed at zstd's fastest level; when none
shrinks, the chunk is stored raw without a full pass of zstd. Already compressed
data (NetCDF-4/HDF5 with deflate, Zarr blosc chunks, .gz, .zip, images) then costs
a hash and a copy, and nothing on restore.

The same samples pick the level: when each shrinks only a little (to over
``FAST_FROM`` of its size: float fields, integer samples, noisy binary data),
the chunk is compressed at level 1, which finds what level 3 finds there in
well under half the time (float32 fields: 0.783 of their size at level 1, 0.782 at 3;
generated float fields 1.5x the speed at the same size; real libraries, code and
text keep level 3; smooth float64 1.009x the size). Text and code shrink
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
PACK_MAGIC = b"LENSPACK1\n"  # a pack's first bytes; its blobs follow, one after another
CODEC_BYTE = [bytes((i,)) for i in range(256)]  # a blob's first byte, by codec
RAW_MARGIN = 0.97
SAMPLE = 8 * 1024         # bytes per sample of the incompressibility test
SAMPLE_MARGIN = 0.99      # samples this close to their size: the chunk is stored raw
SAMPLED_FROM = 64 * 1024  # chunks from this size are tested first
FAST_LEVEL = 1            # the level for chunks whose samples shrink little ...
FAST_FROM = 0.7           # ... each to over this share of its size ...
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


def _samples(data):
    """Sizes under zstd level 1 of samples of ``data`` (its start, middle and end),
    one at a time: a few microseconds each, where a full pass over a megabyte costs
    milliseconds."""
    n = len(data)
    fast = _compressor(1)
    view = memoryview(data)
    for at in (0, (n - SAMPLE) // 2, n - SAMPLE):
        yield len(fast.compress(view[at:at + SAMPLE]))


def looks_incompressible(data) -> bool:
    """Whether every sample of ``data`` fails to shrink under zstd level 1 (chunks
    under ``SAMPLED_FROM``: never; zstd decides). Data compressible anywhere
    sampled is compressed in full."""
    return level_for(data, FAST_LEVEL) == 0


def level_for(data, level: int) -> int:
    """The zstd level for a chunk, ``level`` being the configured one (not 0): 0
    when it looks incompressible (stored raw), ``FAST_LEVEL`` when every sample
    shrinks little (level 3 gains nothing there, at twice the time), else
    ``level`` (and always a configured level of ``FAST_BELOW`` or more). The first
    sample that shrinks well ends the test: text costs one sample, as before."""
    if len(data) < SAMPLED_FROM:
        return level
    shrinks = False
    for size in _samples(data):
        if size < SAMPLE * FAST_FROM:
            return level
        shrinks = shrinks or size < SAMPLE * SAMPLE_MARGIN
    if not shrinks:
        return 0
    return min(level, FAST_LEVEL) if level < FAST_BELOW else level


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
