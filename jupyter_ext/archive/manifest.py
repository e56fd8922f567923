"""Archive manifests (files, sizes, modes, mtimes, chunk lists, tags, user metadata)
and the index entries that make an archive visible. Pure data + (de)serialisation."""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import asdict, dataclass, field

from .errors import IntegrityError, UnsafePath
from .zjson import LIST_START, MAX_MANIFEST_BYTES, Rows, dump, iter_object

# 1: files as objects; 2: files as rows in ROW_FIELDS order (a third of the memory
# when a manifest of many files is read). Both are read.
FORMAT = 2
ROW_FIELDS = ("path", "type", "mode", "mtime_ns", "size", "chunks", "target", "ctime_ns", "ino")
FILE, DIR, SYMLINK = "file", "dir", "symlink"
_TYPES = {t: t for t in (FILE, DIR, SYMLINK)}
HEX64 = re.compile(r"^[0-9a-f]{64}$")
# an empty, "." or ".." component (one search per path: manifests check every path)
_BAD_COMPONENT = re.compile(r"(?:\A|/)\.{0,2}(?:/|\Z)")


def check_relpath(path: str) -> str:
    """Return ``path`` if it is a clean relative POSIX path, else raise UnsafePath.
    Backslashes and colons are ordinary characters in POSIX names (systemd's unit
    names hold ``\\x2d``; ``c:notes`` is a file name): archives and restores run on
    Linux, so only NUL, absolute paths and ``.``/``..`` components are refused."""
    if not isinstance(path, str) or not path or "\x00" in path:
        raise UnsafePath(f"path {path!r}: empty or contains NUL")
    if path.startswith("/"):
        raise UnsafePath(f"path {path!r}: absolute paths are refused")
    if _BAD_COMPONENT.search(path):
        raise UnsafePath(f"path {path!r}: '..', '.' or empty components are refused")
    return path


def check_link(path: str, target: str) -> str:
    """A symlink may only point inside the archive root (relative, no escape)."""
    if not target or "\x00" in target or target.startswith("/"):
        raise UnsafePath(f"symlink {path!r} -> {target!r}: absolute or empty target refused")
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        raise UnsafePath(f"symlink {path!r} -> {target!r} points outside the restore target")
    return target


def _check(path: str, kind: str, chunks: list, target: str) -> None:
    """What ``FileEntry.validate`` and ``check_row`` check."""
    check_relpath(path)
    if kind not in _TYPES:
        raise IntegrityError(f"{path}: unknown entry type {kind!r}")
    if kind == SYMLINK:
        check_link(path, target)
    for c in chunks:
        if not isinstance(c, str) or not HEX64.match(c):
            raise IntegrityError(f"{path}: malformed chunk id {c!r}")


def check_row(row: list) -> list:
    """A manifest row (``ROW_FIELDS``) checked as ``FileEntry.validate`` checks an
    entry; the row itself."""
    _check(row[0], row[1], row[5], row[6])
    return row


def _validated_row(entry: FileEntry) -> list:
    return entry.validate().to_row()



@dataclass(slots=True)  # one per file: slots keep trees of many files small
class FileEntry:
    path: str
    type: str = FILE
    mode: int = 0o644
    mtime_ns: int = 0
    size: int = 0
    chunks: list = field(default_factory=list)  # hex chunk ids
    target: str = ""  # symlink target
    # files only: with size and mtime they tell an unchanged file from a rewritten one
    # (a rewrite within the mtime granularity, or an mtime set back, changes the ctime)
    ctime_ns: int = 0
    ino: int = 0

    def validate(self) -> FileEntry:
        _check(self.path, self.type, self.chunks, self.target)
        return self

    def to_row(self) -> list:
        return [self.path, self.type, self.mode, self.mtime_ns, self.size, self.chunks,
                self.target, self.ctime_ns, self.ino]

    @classmethod
    def from_row(cls, row) -> FileEntry:
        if not isinstance(row, list) or len(row) != len(ROW_FIELDS):
            raise IntegrityError(f"manifest file row {str(row)[:80]!r} is malformed")
        entry = cls(*row)
        # one shared str per type, not one parsed copy per file (~50 bytes a file)
        entry.type = _TYPES.get(entry.type, entry.type)
        return entry

    def to_json(self) -> dict:
        d = {"path": self.path, "type": self.type, "mode": self.mode, "mtime_ns": self.mtime_ns}
        if self.type == FILE:
            d["size"], d["chunks"] = self.size, self.chunks
            d["ctime_ns"], d["ino"] = self.ctime_ns, self.ino
        elif self.type == SYMLINK:
            d["target"] = self.target
        return d


@dataclass
class Manifest:
    name: str
    owner: str
    created: str
    files: list
    tags: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    sources: list = field(default_factory=list)
    storage_class: str = "STANDARD"
    chunker: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    parent: str = ""

    def to_bytes(self, validate: bool = False) -> bytes:
        """The stored form (:meth:`write` into one bytes object)."""
        out: list = []
        self.write(out.append, validate)
        return b"".join(out)

    def write(self, write, validate: bool = False) -> None:
        """The stored form, handed to ``write`` a compressed piece at a time;
        ``validate``: each file entry is checked as it is encoded (one pass over a
        table-backed file list, not two)."""
        files, to_row = self.files, _validated_row if validate else FileEntry.to_row
        if hasattr(files, "rows"):  # a table-backed list gives its rows (or their JSON)
            files, to_row = files.rows(), check_row if validate else None
        doc = {"format": FORMAT, "name": self.name, "owner": self.owner,
               "created": self.created, "tags": self.tags, "meta": self.meta,
               "sources": self.sources, "storage_class": self.storage_class,
               "chunker": self.chunker, "stats": self.stats, "parent": self.parent,
               "file_fields": list(ROW_FIELDS), "files": Rows(files, to_row)}
        dump(doc, write)

    @classmethod
    def from_bytes(cls, data, on_file=None) -> Manifest:
        """Parse a manifest row by row (the document's JSON tree never exists at
        once); ``data`` is its bytes or a binary file object reading them.
        ``on_file(entry)``, if given, receives each file entry instead of the
        manifest keeping it (its ``files`` is then empty): the archiver streams a
        parent's files to disk that way."""
        doc: dict = {}
        files: list = []
        for entry in iter_files(data, doc):
            if on_file is None:
                files.append(entry)
            else:
                on_file(entry)
        fields = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc and k != "files"}
        try:
            return cls(files=files, **fields)
        except TypeError as exc:
            raise IntegrityError(f"manifest does not decode: {exc}") from None

    def validate(self) -> Manifest:
        seen = set()
        for f in self.files:
            f.validate()
            if f.path in seen:
                raise UnsafePath(f"path {f.path!r} appears twice in the manifest")
            seen.add(f.path)
        return self


def iter_files(data, doc: dict):
    """The file entries of a stored manifest as they are read (``data``: its bytes
    or a binary file object reading them); ``doc`` receives its other keys. The
    format is checked once the whole manifest is read (IntegrityError at the
    generator's end)."""
    kinds = set()
    seen_files = False
    count = 0
    for key, value in iter_object(data, MAX_MANIFEST_BYTES, "manifest", "files"):
        if key != "files":
            doc[key] = value
            continue
        if value is LIST_START:
            seen_files = True
            continue
        kinds.add(type(value))
        try:
            if isinstance(value, list):
                entry = FileEntry.from_row(value)
            else:
                entry = FileEntry(**{k: v for k, v in value.items()
                                     if k in FileEntry.__dataclass_fields__})
                entry.type = _TYPES.get(entry.type, entry.type)
        except (TypeError, AttributeError):
            raise IntegrityError(f"manifest file entry {count} is malformed") from None
        count += 1
        yield entry
    fmt = doc.get("format")
    if fmt not in (1, 2) or not seen_files or kinds - ({list} if fmt == 2 else {dict}):
        raise IntegrityError(f"manifest format {fmt!r} unsupported")
    if fmt == 2 and doc.get("file_fields") != list(ROW_FIELDS):
        raise IntegrityError("manifest file fields are not the known ones")


@dataclass
class ArchiveEntry:
    """The small hot object under ``archives/`` that makes an archive visible."""

    id: str
    name: str
    owner: str
    created: str
    manifest: str
    tags: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    storage_class: str = "STANDARD"
    files: int = 0
    size: int = 0
    added_bytes: int = 0      # packed bytes new in this archive
    packs: int = 0            # pack objects new in this archive (what storage is metered by)
    sources: list = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ArchiveEntry:
        try:
            doc = json.loads(data)
            return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError) as exc:
            raise IntegrityError(f"archive entry does not decode: {exc}") from None

    def as_dict(self) -> dict:
        return asdict(self)


MAX_LINK_HOPS = 40  # like the kernel's limit on nested symlinks


def resolve_inside(path: str, target: str, link_of) -> str:
    """The root-relative path the link ``path -> target`` ends at, following
    ``link_of``; UnsafePath if any step leaves the root or the chain loops."""
    where = path.split("/")[:-1]
    todo = _link_parts(path, target)
    hops = 0
    while todo:
        c = todo.pop(0)
        if c in ("", "."):
            continue
        if c == "..":
            if not where:
                raise UnsafePath(f"symlink {path!r} -> {target!r} leaves the restore target "
                                 "through a chain of links")
            where.pop()
            continue
        where.append(c)
        nxt = link_of("/".join(where))
        if nxt is not None:
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise UnsafePath(f"symlink {path!r} -> {target!r}: too many levels of links")
            where.pop()
            todo = _link_parts(path, nxt) + todo
    return "/".join(where)


def _link_parts(path: str, target: str) -> list:
    if not target or "\x00" in target or target.startswith("/"):
        raise UnsafePath(f"symlink {path!r} -> {target!r}: absolute or empty target on the "
                         "way refused")
    return target.split("/")
