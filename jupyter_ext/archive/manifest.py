"""Archive manifests (files, sizes, modes, mtimes, chunk lists, tags, user metadata)
and the index entries that make an archive visible. Pure data + (de)serialisation."""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import asdict, dataclass, field

import zstandard

from .errors import IntegrityError, UnsafePath

FORMAT = 1
FILE, DIR, SYMLINK = "file", "dir", "symlink"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def check_relpath(path: str) -> str:
    """Return ``path`` if it is a clean relative POSIX path, else raise UnsafePath."""
    if not isinstance(path, str) or not path or "\x00" in path or "\\" in path:
        raise UnsafePath(f"path {path!r}: empty or contains NUL/backslash")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise UnsafePath(f"path {path!r}: absolute paths are refused")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
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


@dataclass
class FileEntry:
    path: str
    type: str = FILE
    mode: int = 0o644
    mtime_ns: int = 0
    size: int = 0
    chunks: list = field(default_factory=list)  # hex chunk ids
    target: str = ""  # symlink target

    def validate(self) -> FileEntry:
        check_relpath(self.path)
        if self.type not in (FILE, DIR, SYMLINK):
            raise IntegrityError(f"{self.path}: unknown entry type {self.type!r}")
        if self.type == SYMLINK:
            check_link(self.path, self.target)
        for c in self.chunks:
            if not isinstance(c, str) or not HEX64.match(c):
                raise IntegrityError(f"{self.path}: malformed chunk id {c!r}")
        return self

    def to_json(self) -> dict:
        d = {"path": self.path, "type": self.type, "mode": self.mode, "mtime_ns": self.mtime_ns}
        if self.type == FILE:
            d["size"], d["chunks"] = self.size, self.chunks
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

    def to_bytes(self) -> bytes:
        doc = {"format": FORMAT, "name": self.name, "owner": self.owner,
               "created": self.created, "tags": self.tags, "meta": self.meta,
               "sources": self.sources, "storage_class": self.storage_class,
               "chunker": self.chunker, "stats": self.stats, "parent": self.parent,
               "files": [f.to_json() for f in self.files]}
        raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        return zstandard.ZstdCompressor(level=3).compress(raw)

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            doc = json.loads(zstandard.ZstdDecompressor().decompress(data))
        except (zstandard.ZstdError, ValueError) as exc:
            raise IntegrityError(f"manifest does not decode: {exc}") from None
        if doc.get("format") != FORMAT:
            raise IntegrityError(f"manifest format {doc.get('format')!r} unsupported")
        files = [FileEntry(**{k: v for k, v in f.items()
                              if k in FileEntry.__dataclass_fields__}) for f in doc["files"]]
        fields = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc and k != "files"}
        return cls(files=files, **fields)

    def validate(self) -> Manifest:
        seen = set()
        for f in self.files:
            f.validate()
            if f.path in seen:
                raise UnsafePath(f"path {f.path!r} appears twice in the manifest")
            seen.add(f.path)
        return self


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
