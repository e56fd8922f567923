"""Content-defined chunking (FastCDC), BLAKE3 chunk ids and zstd blobs.

A blob is one codec byte followed by the payload: ``0`` raw, ``1`` zstd. Chunks
that do not shrink by at least ``RAW_MARGIN`` are stored raw. A cheap test comes
first: three small samples of a chunk compressed at zstd's fastest level; when none
shrinks, the chunk is stored raw without a full pass of zstd. Already compressed
data (NetCDF-4/HDF5 with deflate, Zarr blosc chunks, .gz, .zip, images) then costs
a hash and a copy, and nothing on restore.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import blake3
import zstandard

from .errors import ConfigError, IntegrityError

CODEC_RAW = 0
CODEC_ZSTD = 1
RAW_MARGIN = 0.97
SAMPLE = 8 * 1024         # bytes per sample of the incompressibility test
SAMPLE_MARGIN = 0.99      # samples this close to their size: the chunk is stored raw
SAMPLED_FROM = 64 * 1024  # chunks from this size are tested first
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


_buffers = threading.local()


def _read_buffer(size: int) -> bytearray:
    """This thread's read buffer, reused from file to file: a fresh one per file
    cost a zero fill and a page fault per 4 KiB (about a tenth of the archiver's
    time)."""
    buf = getattr(_buffers, "buf", None)
    if buf is None or len(buf) < size:
        buf = _buffers.buf = bytearray(size)
    return buf


def iter_chunks(fileobj, params: ChunkerParams, read_size: int = READ_SIZE):
    """Yield memoryviews of the content-defined chunks of a raw binary file object.

    The file is read with ``readinto`` into this thread's buffer (a read plus the
    unfinished tail), which is reused: a yielded view is only valid until the next
    one is asked for (and until the next file on this thread), so consumers copy or
    write it before that."""
    from fastcdc import fastcdc  # here: it imports click, which reader processes never need

    read_size = max(read_size, params.max_size)
    cap = read_size + params.max_size
    mv = memoryview(_read_buffer(cap))[:cap]
    filled, eof = 0, False
    while True:
        while filled < cap:
            n = fileobj.readinto(mv[filled:])
            if not n:
                eof = True
                break
            filled += n
        if not filled:
            return
        end = 0
        for c in fastcdc(mv[:filled], params.min_size, params.avg_size, params.max_size):
            stop = c.offset + c.length
            if not eof and stop == filled and c.length < params.max_size:
                break  # the boundary may move once more data arrives
            yield mv[c.offset:stop]
            end = stop
        if eof:
            return
        tail = filled - end
        mv[:tail] = mv[end:filled]  # the unfinished tail to the front (memmove)
        filled = tail


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
