"""zstd-compressed JSON documents (manifests, pack indexes) with a bounded reader.

The reader never trusts the frame header: it decompresses in steps and stops
with :class:`TooLarge` as soon as the output passes the bound, so a small
crafted object cannot make the restorer allocate hundreds of MiB.
"""

from __future__ import annotations

import json

import zstandard

from .errors import IntegrityError, TooLarge

MiB = 1024 * 1024
# A manifest entry is ~150 bytes plus ~67 per chunk id: 256 MiB holds well over a
# million files of a multi-TB archive. Bigger archives should be split by folder.
MAX_MANIFEST_BYTES = 256 * MiB
# One pack holds at most pack_size (<= 1 GiB) of chunks of >= min_size; an index
# entry is ~90 bytes. 64 MiB allows ~700k chunks per pack, far above any real pack.
MAX_INDEX_BYTES = 64 * MiB
STEP = 1 * MiB


LIST_SLICE = 2000  # items of a long list encoded per C-encoder call


class Rows:
    """A long list encoded lazily: ``to_json(item)`` runs slice by slice while the
    document is written, so the JSON form of every item never exists at once."""

    def __init__(self, items: list, to_json):
        self.items, self.to_json = items, to_json

    def __len__(self) -> int:
        return len(self.items)

    def batches(self):
        """Lists of JSON rows, LIST_SLICE items at a time (or the items' own
        ``batches()``, e.g. rows read from disk page by page)."""
        if hasattr(self.items, "batches"):
            for part in self.items.batches():
                yield [self.to_json(item) for item in part]
            return
        for j in range(0, len(self.items), LIST_SLICE):
            yield [self.to_json(item) for item in self.items[j:j + LIST_SLICE]]


def dumps(doc, level: int = 3) -> bytes:
    """Compact, key-sorted JSON, compressed as a stream (no full raw copy in memory).

    Long top-level lists (a manifest's files) are encoded slice by slice with the C
    encoder; the output is the same as ``json.dumps(doc, separators=(",", ":"),
    sort_keys=True)``."""
    enc = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
    cobj = zstandard.ZstdCompressor(level=level).compressobj()
    out = []

    def emit(text: str) -> None:
        out.append(cobj.compress(text.encode()))

    if not isinstance(doc, dict):
        emit(enc.encode(doc))
    else:
        emit("{")
        for i, key in enumerate(sorted(doc)):
            value = doc[key]
            emit(("," if i else "") + enc.encode(str(key)) + ":")
            if isinstance(value, list) and len(value) > LIST_SLICE:
                value = Rows(value, lambda item: item)
            if isinstance(value, Rows):
                emit("[")
                first = True
                for part in value.batches():
                    if part:
                        emit(("" if first else ",") + enc.encode(part)[1:-1])
                        first = False
                emit("]")
            else:
                emit(enc.encode(value))
        emit("}")
    out.append(cobj.flush())
    return b"".join(out)


def decompress_bounded(data: bytes, limit: int, what: str) -> bytearray:
    """The plaintext of one zstd frame, refusing output beyond ``limit`` bytes."""
    out = bytearray()
    try:
        size = zstandard.frame_content_size(data)
        if size > limit:
            raise TooLarge(f"{what}: declares {size} bytes, more than the {_human(limit)} "
                           "bound; refusing it (corrupt or hostile object)")
        with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=False) as r:
            while True:
                piece = r.read(STEP)
                if not piece:
                    break
                out += piece
                if len(out) > limit:
                    raise TooLarge(f"{what}: decompresses to more than the "
                                   f"{_human(limit)} bound; refusing it (corrupt or hostile object)")
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what} does not decode: {exc}") from None
    return out  # json.loads takes a bytearray: no second copy of the plaintext


def _human(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB else f"{n} bytes"


def loads(data: bytes, limit: int, what: str):
    raw = decompress_bounded(data, limit, what)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise IntegrityError(f"{what} does not decode: {exc}") from None
