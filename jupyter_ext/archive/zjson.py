"""zstd-compressed JSON documents (manifests, pack indexes) with a bounded reader.

The reader never trusts the frame header: it decompresses in steps and stops
with :class:`TooLarge` as soon as the output passes the bound, so a small
crafted object cannot make the restorer allocate hundreds of MiB.
"""

from __future__ import annotations

import codecs
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
STEP = 256 * 1024  # text decompressed at a time (1 MiB: 4 MB more of buffers, slower)


LIST_SLICE = 2000  # items of a long list encoded per C-encoder call


class Rows:
    """A long list encoded lazily: ``to_json(item)`` (None: the items as they are)
    runs slice by slice while the document is written, so the JSON form of every
    item never exists at once."""

    def __init__(self, items: list, to_json=None):
        self.items, self.to_json = items, to_json

    def __len__(self) -> int:
        return len(self.items)

    def batches(self):
        """Lists of JSON rows, LIST_SLICE items at a time (or the items' own
        ``batches()``, e.g. rows read from disk page by page)."""
        to_json = self.to_json
        if hasattr(self.items, "batches"):
            for part in self.items.batches():
                yield part if to_json is None else [to_json(item) for item in part]
            return
        for j in range(0, len(self.items), LIST_SLICE):
            part = self.items[j:j + LIST_SLICE]
            yield part if to_json is None else [to_json(item) for item in part]

    def texts(self, enc: json.JSONEncoder):
        """The items' JSON text, a batch at a time, without the brackets: from the
        items' own ``json_texts(enc)`` when they write it and nothing is checked on
        the way (a table writes its rows' JSON itself), else ``enc`` over
        ``batches()``."""
        if self.to_json is None and hasattr(self.items, "json_texts"):
            yield from self.items.json_texts(enc)
            return
        for part in self.batches():
            if part:
                yield enc.encode(part)[1:-1]


def dumps(doc, level: int = 3) -> bytes:
    """:func:`dump` into one bytes object."""
    out: list = []
    dump(doc, out.append, level)
    return b"".join(out)


def dump(doc, write, level: int = 3) -> None:
    """Compact, key-sorted JSON, compressed as a stream and handed to ``write`` a
    piece at a time (neither the raw text nor the compressed whole in memory).

    Long top-level lists (a manifest's files) are encoded slice by slice with the C
    encoder; the output is the same as ``json.dumps(doc, separators=(",", ":"),
    sort_keys=True)``."""
    enc = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
    cobj = zstandard.ZstdCompressor(level=level).compressobj()
    long = isinstance(doc, dict) and any(
        isinstance(v, Rows) or (isinstance(v, list) and len(v) > LIST_SLICE)
        for v in doc.values())
    if long:  # compression of one slice runs (without the GIL) while the next is encoded
        with _Behind(cobj, write) as emit:
            _encode(doc, enc, emit)
    else:
        def emit(text: str) -> None:
            piece = cobj.compress(text.encode())
            if piece:
                write(piece)

        _encode(doc, enc, emit)
    write(cobj.flush())


class _Behind:
    """``emit`` that compresses on a thread of its own, one piece in flight, and
    hands the output to ``write`` in order (from the caller's thread)."""

    def __init__(self, cobj, write):
        self.cobj, self.write = cobj, write
        # imported here: the manifest reader process only reads (2 MB less of it)
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(1, thread_name_prefix="lens-zjson")
        self.pending = None

    def __call__(self, text: str) -> None:
        data = text.encode()
        self._wait()
        self.pending = self.pool.submit(self.cobj.compress, data)

    def _wait(self) -> None:
        if self.pending is not None:
            piece, self.pending = self.pending.result(), None
            if piece:
                self.write(piece)

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if kind is None:
                self._wait()
        finally:
            self.pool.shutdown(wait=True)


def _encode(doc, enc, emit) -> None:
    if not isinstance(doc, dict):
        emit(enc.encode(doc))
    else:
        emit("{")
        for i, key in enumerate(sorted(doc)):
            value = doc[key]
            emit(("," if i else "") + enc.encode(str(key)) + ":")
            if isinstance(value, list) and len(value) > LIST_SLICE:
                value = Rows(value)
            if isinstance(value, Rows):
                emit("[")
                first = True
                for text in value.texts(enc):
                    if text:
                        emit(text if first else "," + text)
                        first = False
                emit("]")
            else:
                emit(enc.encode(value))
        emit("}")


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


class _Stream:
    """Decompressed text of one frame, read STEP at a time, never past ``limit``."""

    def __init__(self, data, limit: int, what: str):
        """``data``: the compressed bytes, or a binary file object reading them (the
        object is then never held whole)."""
        head = data
        if not isinstance(data, (bytes, bytearray, memoryview)):
            head = data.read(FRAME_HEADER_MAX)
            data = _Prefixed(head, data)
        size = zstandard.frame_content_size(head)
        if size > limit:
            raise TooLarge(f"{what}: declares {size} bytes, more than the {_human(limit)} "
                           "bound; refusing it (corrupt or hostile object)")
        self.reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=False)
        self.text = codecs.getincrementaldecoder("utf-8")()
        self.limit, self.what = limit, what
        self.buf, self.pos, self.total, self.eof = "", 0, 0, False

    def more(self, at_least: int = STEP) -> bool:
        if self.eof:
            return False
        piece = self.reader.read(at_least)
        self.total += len(piece)
        if self.total > self.limit:
            raise TooLarge(f"{self.what}: decompresses to more than the "
                           f"{_human(self.limit)} bound; refusing it (corrupt or hostile object)")
        self.buf = self.buf[self.pos:] + self.text.decode(piece, final=not piece)
        self.pos = 0
        self.eof = not piece
        return True

    def peek(self) -> str:
        """The next non-blank character ('' at the end), not consumed."""
        while True:
            n = len(self.buf)
            while self.pos < n and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < n:
                return self.buf[self.pos]
            if not self.more():
                return ""

    def take(self, char: str) -> None:
        if self.peek() != char:
            raise ValueError(f"expected {char!r} at byte {self.total}")
        self.pos += 1

    def value(self):
        self.peek()
        while True:
            try:
                v, end = _DECODER.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:  # a number may go on in the next step
                    self.pos = end
                    return v
            except ValueError:
                if self.eof:
                    raise
            # a value longer than the text at hand: double it, so a long value is
            # parsed O(log n) times, not once per step
            self.more(max(STEP, len(self.buf) - self.pos))


    def items(self):
        """The items of a list whose ``[`` was taken, its ``]`` taken after the last."""
        while True:
            buf, pos = self.buf, self.pos
            try:
                v, end = _DECODER.raw_decode(buf, pos)
            except ValueError:
                end = -1
            if 0 <= end < len(buf) and buf[end] in ",]":
                # compact text (as ``dump`` writes it): the item and its separator
                # are in the text at hand, so no peek and take around it
                self.pos = end + 1
                yield v
                if buf[end] == "]":
                    return
                continue
            # blanks, an item cut by the end of the text at hand, or bad text
            yield self.value()
            if self.peek() == "]":
                self.take("]")
                return
            self.take(",")


class _Prefixed:
    """A file object's bytes after ``head`` (already read from it), read as one."""

    def __init__(self, head: bytes, rest):
        self.head, self.rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n is None or n < 0:
                out, self.head = self.head + self.rest.read(), b""
                return out
            out, self.head = self.head[:n], self.head[n:]
            return out
        return self.rest.read(n)


_DECODER = json.JSONDecoder()
FRAME_HEADER_MAX = 18  # zstd's ZSTD_FRAMEHEADERSIZE_MAX: enough for the content size
LIST_START = object()  # iter_object: the streamed list begins (it may be empty)


def iter_object(data, limit: int, what: str, streamed: str):
    """Read a zstd JSON object item by item: yields ``(key, value)`` pairs, except
    for the list under ``streamed``, whose items are yielded one at a time as
    ``(streamed, item)`` after ``(streamed, LIST_START)``. Memory: one item and one
    STEP of text, not the document."""
    try:
        s = _Stream(data, limit, what)
        s.take("{")
        if s.peek() == "}":
            return
        while True:
            key = s.value()
            if not isinstance(key, str):
                raise ValueError("object key is not a string")
            s.take(":")
            if key == streamed and s.peek() == "[":
                s.take("[")
                yield key, LIST_START
                if s.peek() == "]":
                    s.take("]")
                else:
                    for item in s.items():
                        yield key, item
            else:
                yield key, s.value()
            if s.peek() == "}":
                s.take("}")
                break
            s.take(",")
        if s.peek() != "":
            raise ValueError("data after the object")
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what} does not decode: {exc}") from None
    except ValueError as exc:
        raise IntegrityError(f"{what} does not decode: {exc}") from None
