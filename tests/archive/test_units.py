"""Pure pieces: chunking, blob codec, manifests, pricing, lifecycle templates."""

from __future__ import annotations

import io
import json
import math
import os
import random
import struct
from decimal import ROUND_HALF_UP, Decimal

import pytest
from botocore.exceptions import ClientError

from jupyter_ext.archive import blobs, chunks, lifecycle, pricing
from jupyter_ext.archive.errors import ConfigError, IntegrityError, UnsafePath
from jupyter_ext.archive.filetable import _ROW_JSON, FileTable
from jupyter_ext.archive.manifest import FileEntry, Manifest, check_link, check_relpath
from jupyter_ext.archive.scan import scan
from jupyter_ext.archive.sources import Source
from jupyter_ext.archive.stores.s3 import parse_restore_header, with_retries
from jupyter_ext.costs.catalog import PriceCatalog, packaged_snapshot

P = chunks.ChunkerParams(4096, 16384, 65536)


def _cuts(data: bytes) -> list[bytes]:
    return [bytes(v) for v in chunks.iter_chunks(io.BytesIO(data), P, read_size=P.max_size * 2)]


def test_chunking_is_content_defined_and_streaming_safe():
    rng = random.Random(1)
    data = rng.randbytes(1_000_000)
    parts = _cuts(data)
    assert b"".join(parts) == data
    assert all(len(p) <= P.max_size for p in parts)
    # streaming in small reads gives the same cuts as one big buffer
    whole = [bytes(v) for v in chunks.iter_chunks(io.BytesIO(data), P, read_size=10**7)]
    assert whole == parts
    # an insertion near the start only changes the chunks around it
    edited = data[:1000] + b"INSERTED" + data[1000:]
    after = _cuts(edited)
    shared = set(parts) & set(after)
    assert len(shared) >= len(parts) - 2


def test_chunking_reuses_one_buffer_per_thread_across_files():
    """The read buffer is reused from file to file: each file still gets its own
    cuts, the same as a fresh chunker's (views are copied before the next file)."""
    rng = random.Random(3)
    files = [rng.randbytes(n) for n in (300_000, 10, 0, 70_000, 300_000)]
    fresh = [_cuts(d) for d in files]
    again = [_cuts(d) for d in files]
    assert again == fresh
    assert [b"".join(c) for c in again] == files


def test_encode_parts_keeps_raw_payload_uncopied():
    noise = memoryview(random.Random(4).randbytes(20_000))
    codec, payload = blobs.encode_parts(noise, 3)
    assert codec == blobs.CODEC_RAW and payload is noise
    assert blobs.decode(bytes((codec,)) + bytes(payload), blobs.chunk_id(noise)) == noise


def test_the_cheap_test_sends_only_incompressible_chunks_around_zstd():
    rng = random.Random(5)
    noise = rng.randbytes(1 << 20)
    assert blobs.looks_incompressible(noise)
    assert blobs.encode_parts(noise, 3)[0] == blobs.CODEC_RAW
    # compressible in any sampled place (start, middle or end): compressed in full
    for at in (0, (1 << 19) - 4096, (1 << 20) - 8192):
        mixed = bytearray(noise)
        mixed[at:at + 8192] = bytes(8192)
        assert not blobs.looks_incompressible(mixed)
    text = b"time,lat,lon,sst\n" + b"".join(f"{i},{i % 90},{i % 180},{rng.gauss(15, 4):.3f}\n".encode()
                                                for i in range(40_000))
    assert not blobs.looks_incompressible(text)
    assert blobs.encode_parts(text, 3)[0] == blobs.CODEC_ZSTD
    assert not blobs.looks_incompressible(noise[:1000])  # small chunks: zstd decides
    # noisy float32 fields shrink a little under zstd, and are compressed
    fields = b"".join(struct.pack("<f", 280 + 10 * math.sin(i / 500) + rng.gauss(0, 0.01))
                      for i in range(1 << 16))
    assert blobs.encode_parts(fields, 3)[0] == blobs.CODEC_ZSTD


def test_the_samples_pick_level_1_for_data_that_shrinks_little():
    """Noisy float32 fields shrink as much at level 1 as at level 3, in less time:
    they get level 1; text keeps the configured level; noise stays raw; a
    negative (faster) level is used as configured, never as 'raw'."""
    rng = random.Random(6)
    fields = b"".join(struct.pack("<f", 280 + 10 * math.sin(i / 500) + rng.gauss(0, 1))
                      for i in range(1 << 17))
    text = b"".join(f"{i},{rng.gauss(15, 4):.3f},station-{i % 40}\n".encode()
                    for i in range(30_000))
    noise = rng.randbytes(1 << 19)
    assert blobs.level_for(fields, 3) == blobs.FAST_LEVEL
    assert blobs.level_for(text, 3) == 3 and blobs.level_for(text, 9) == 9
    assert blobs.level_for(noise, 3) == 0
    assert blobs.level_for(fields[:4096], 3) == 3  # small: zstd decides, at the level
    assert blobs.level_for(fields, -3) == -3
    assert blobs.level_for(fields, 9) == 9  # a level above the default: asked for its size
    for data, level in ((fields, 3), (text, 3), (text, -3)):
        codec, payload = blobs.encode_parts(data, level)
        assert codec == blobs.CODEC_ZSTD and len(payload) < len(data)
        assert blobs.decode(bytes((codec,)) + bytes(payload), blobs.chunk_id(data),
                            len(data)) == data
    # level 1 found what level 3 finds in the fields (within a percent)
    at3 = len(blobs._compressor(3).compress(fields))
    assert len(blobs.encode_parts(fields, 3)[1]) <= at3 * 1.01


def test_codec_compresses_text_and_keeps_random_raw():
    text = b"temperature,salinity\n" * 5000
    blob = blobs.encode(text, 3)
    assert blob[0] == blobs.CODEC_ZSTD and len(blob) < len(text) // 10
    noise = random.Random(2).randbytes(50_000)
    raw = blobs.encode(noise, 3)
    assert raw[0] == blobs.CODEC_RAW and raw[1:] == noise
    cid = blobs.chunk_id(text)
    assert blobs.decode(blob, cid, len(text)) == text
    bad = bytearray(raw)
    bad[100] ^= 1
    with pytest.raises(IntegrityError):
        blobs.decode(bytes(bad), blobs.chunk_id(noise), len(noise))


def test_chunker_params_validated():
    with pytest.raises(ConfigError, match="min_size"):
        chunks.ChunkerParams(100, 50, 200).validate()


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/passwd", "a//b", "", "a/./b",
                                 "a\x00b", "x/..", ".", "..", "a/", "./a", "a/.", "a/../b"])
def test_relpath_refuses_escapes(bad):
    with pytest.raises(UnsafePath):
        check_relpath(bad)


@pytest.mark.parametrize("good", ["system-systemd\\x2dcryptsetup.slice", "C:/x", "c:notes",
                                  "a\\..\\b", "...", "..x/y", "a/...b", ".a/b.", "a\n",
                                  "a/..\n"])
def test_relpath_takes_posix_names_that_look_odd(good):
    assert check_relpath(good) == good


def test_symlink_targets():
    assert check_link("a/b", "../c") == "../c"
    for target in ("../../etc", "/etc/passwd", "../x/../../y"):
        with pytest.raises(UnsafePath):
            check_link("a/b", target)


def test_manifest_round_trip_and_duplicate_paths():
    m = Manifest("n", "user:a", "2026-01-01T00:00:00", [FileEntry("x", chunks=["0" * 64])],
                 tags={"k": "v"}, meta={"m": "1"})
    m2 = Manifest.from_bytes(m.to_bytes())
    assert m2.files[0].chunks == ["0" * 64] and m2.tags == {"k": "v"}
    m.files.append(FileEntry("x"))
    with pytest.raises(UnsafePath, match="twice"):
        m.validate()


def test_a_manifest_from_the_file_table_is_the_one_from_its_entries(tmp_path):
    """The archiver's manifest rows come straight from its table (no FileEntry per
    file): the bytes are those of the same entries written one by one, and a bad
    path in the table is refused all the same."""
    (tmp_path / "t" / "sub").mkdir(parents=True)
    (tmp_path / "t" / "sub" / "a.txt").write_bytes(b"a" * 10)
    (tmp_path / "t" / "b.bin").write_bytes(b"")
    os.symlink("sub/a.txt", tmp_path / "t" / "link")
    table = FileTable(str(tmp_path))
    scan([str(tmp_path / "t")], out=table)
    table.flush()
    ids = {}
    for page in table.pages():
        for seq, entry, _src in page:
            if entry.type == "file" and entry.size:
                ids[seq] = [bytes([seq]) * 32, bytes([seq + 1]) * 32]
                table.set_chunks(seq, ids[seq], entry.size)
    table.flush_results()
    entries = [e for page in table.pages() for _seq, e, _src in page]
    assert [len(e.chunks) for e in entries] == [0, 0, 0, 0, 2]  # t, b.bin, link, sub, a.txt
    rows = Manifest("n", "user:a", "c", table.manifest_files()).to_bytes(validate=True)
    assert rows == Manifest("n", "user:a", "c", entries).to_bytes(validate=True)
    assert Manifest.from_bytes(rows).files == entries
    table.append((FileEntry("t/../escape", size=1), Source("/x", 1, 2)))
    table.flush()
    with pytest.raises(UnsafePath, match="escape"):
        Manifest("n", "user:a", "c", table.manifest_files()).to_bytes(validate=True)
    table.close()


def test_the_table_writes_the_json_of_plain_rows_itself_as_python_would(tmp_path):
    """sqlite writes the JSON of rows of at most one chunk with plain names (printable
    ASCII without quotes or backslashes); Python writes the others. The text is the
    same as ``json.dumps`` of the rows, whatever the names, targets and numbers."""
    rng = random.Random(5)
    odd = ['"', "\\", "\n", "\x01", "\x1f", "\x7f", "é", "日本", "\u2028", "😀", "\ud7ff"]
    plain_chars = [chr(c) for c in range(32, 127) if chr(c) not in '"\\/']
    table = FileTable(str(tmp_path))
    names = []
    for i in range(3000):
        name = "".join(rng.choice(plain_chars) for _ in range(rng.randint(1, 10)))
        if i % 2:
            name += rng.choice(odd)
        kind = ("file", "dir", "symlink")[i % 3]
        target = (f"t{name}" if i % 6 == 2 else "target") if kind == "symlink" else ""
        names.append(f"top/{i}{name}")
        table.append((FileEntry(names[-1], kind, rng.randint(0, 0o7777), rng.randint(-2**40, 2**62),
                                rng.randint(0, 2**40), [], target, rng.randint(0, 2**62),
                                rng.randint(0, 2**40)), Source("/x", 1, i)))
    table.flush()
    table.set_many([(b"".join(os.urandom(32) for _ in range(seq % 4 % 3)), seq * 7, seq)
                    for seq in range(1, len(names) + 1) if seq % 5])  # every 5th never read
    table.flush_results()
    rows = table.manifest_files().rows()
    enc = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
    assert ",".join(rows.json_texts(enc)) == ",".join(
        enc.encode(part)[1:-1] for part in rows.batches())
    by_sqlite = [seq for page in table._raw_pages(f"seq, {_ROW_JSON}") for seq, text in page
                 if text is not None]
    assert by_sqlite == [seq for seq in range(1, len(names) + 1)  # plain, 0 or 1 chunk
                         if seq % 2 and (seq % 4 % 3 < 2 or not seq % 5)]


def _prices(mutate=None) -> PriceCatalog:
    snap = packaged_snapshot()
    if mutate:
        mutate(snap["regions"]["us-east-1"]["s3"])
    return PriceCatalog(snap)


def _micro(usd: Decimal) -> int:
    return int((usd * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


S3 = packaged_snapshot()["regions"]["us-east-1"]["s3"]
GIB = 2**30


def test_glacier_overhead_minimum_duration_and_early_deletion():
    # 1000 objects of 1 MiB in GLACIER: 40 KB overhead each (32 KB at GLACIER, 8 KB STANDARD);
    # the expected figures come from prices.json's numbers and AWS's 730-hour month
    sizes = [1024 * 1024] * 1000
    c = pricing.storage_cost(sizes, "GLACIER", _prices())
    per_month = (Decimal(S3["GLACIER"]["gb_month"]) * (sum(sizes) + 1000 * 32 * 1024)
                 + Decimal(S3["STANDARD"]["gb_month"]) * 1000 * 8 * 1024) / GIB
    per_hour = per_month / 730
    assert c.monthly == _micro(per_month)
    assert c.billed_bytes == sum(sizes) + 1000 * 40 * 1024
    assert c.min_days == 90 and c.minimum_charge == _micro(per_hour * 90 * 24)
    assert c.early_deletion_fee(30) == _micro(per_hour * 60 * 24)
    assert c.early_deletion_fee(120) == 0
    assert c.upload == _micro(Decimal(S3["GLACIER"]["put_per_1000"]) * 1000 / 1000)
    # STANDARD_IA bills small objects as 128 KB
    ia = pricing.storage_cost([1000], "STANDARD_IA", _prices())
    assert ia.billed_bytes == 128 * 1024
    # DEEP_ARCHIVE is the cheapest per month for large data, STANDARD the dearest
    table = {r["storage_class"]: r["monthly_micro"]
             for r in pricing.cost_table([GIB] * 10, prices=_prices())}
    assert table["DEEP_ARCHIVE"] < table["GLACIER"] < table["STANDARD_IA"] < table["STANDARD"]
    assert all(isinstance(v, int) for v in table.values())


def test_accrued_charge_is_prorated_integer():
    c = pricing.storage_cost([GIB], "STANDARD", _prices())
    assert pricing.accrued(c, 730 * 3600) == c.monthly
    assert pricing.accrued(c, pricing.DAY) == _micro(Decimal(S3["STANDARD"]["gb_month"]) / 730 * 24)
    assert pricing.accrued(c, 0) == 0 and isinstance(pricing.accrued(c, 1), int)


def test_retrieval_tiers_and_bad_class():
    est = {e.tier: e for e in pricing.retrieval_estimates({"GLACIER": [GIB] * 2}, _prices())}
    assert set(est) == {"bulk", "standard", "expedited"}
    assert est["bulk"].cost < est["standard"].cost < est["expedited"].cost
    assert est["expedited"].hours[1] < est["standard"].hours[0]
    restore = S3["GLACIER"]["restore"]["Standard"]
    assert est["standard"].cost == _micro(Decimal(restore["gb"]) * 2
                                          + Decimal(restore["per_1000"]) * 2 / 1000)
    deep = {e.tier for e in pricing.retrieval_estimates({"DEEP_ARCHIVE": [1]}, _prices())}
    assert deep == {"bulk", "standard"}
    with pytest.raises(ConfigError, match="storage_class.*GLACIER"):
        pricing.check_class("COLD")

    def free_glacier(s3):
        s3["GLACIER"].update(gb_month="0", overhead_kb={"class": 0, "STANDARD": 0})

    assert pricing.storage_cost([GIB], "GLACIER", _prices(free_glacier)).monthly == 0


def test_lifecycle_templates():
    rules = lifecycle.lifecycle_rules("archive-optimization", "lens/")
    data, abort = rules
    assert [(t["Days"], t["StorageClass"]) for t in data["Transitions"]] == [
        (30, "STANDARD_IA"), (90, "GLACIER"), (365, "DEEP_ARCHIVE")]
    assert data["Filter"]["And"]["Tags"] == [{"Key": "lens-kind", "Value": "data"}]
    assert abort["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    for name in lifecycle.TEMPLATES:
        assert any("AbortIncompleteMultipartUpload" in r
                   for r in lifecycle.lifecycle_rules(name))
    with pytest.raises(ConfigError, match="fast-access"):
        lifecycle.lifecycle_rules("nope")
    merged = lifecycle.merge_rules([{"ID": "theirs"}, {"ID": "lens-old"}], rules)
    assert [r["ID"] for r in merged][0] == "theirs" and len(merged) == 3


def test_restore_header_and_retries():
    assert parse_restore_header(None) is None
    assert parse_restore_header('ongoing-request="true"') == "ongoing"
    assert parse_restore_header('ongoing-request="false", expiry-date="x"') == "done"
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ClientError({"Error": {"Code": "SlowDown"}}, "PutObject")
        return "ok"

    assert with_retries(flaky, base=0.001) == "ok" and len(calls) == 3

    def denied():
        raise ClientError({"Error": {"Code": "AccessDenied"}}, "PutObject")

    with pytest.raises(ClientError):
        with_retries(denied, base=0.001)


def test_engine_imports_nothing_from_jupyter():
    import subprocess
    import sys

    code = ("import sys, jupyter_ext.archive, jupyter_ext.archive.stores.s3, "
            "jupyter_ext.cli.archive\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('jupyter_server', 'IPython', 'ipywidgets', 'jupyterhub', 'tornado', 'ipykernel'))\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_manifests_of_both_formats_read_and_malformed_rows_are_refused():
    from jupyter_ext.archive.zjson import dumps

    entry = {"path": "d/a.txt", "type": "file", "mode": 0o644, "mtime_ns": 5, "size": 3,
             "chunks": ["ab" * 32]}
    old = dumps({"format": 1, "name": "n", "owner": "user:a", "created": "2026-01-01",
                 "files": [entry, {"path": "d", "type": "dir", "mode": 0o755, "mtime_ns": 1}]})
    m = Manifest.from_bytes(old).validate()
    assert [f.path for f in m.files] == ["d/a.txt", "d"] and m.files[0].ctime_ns == 0
    again = Manifest.from_bytes(m.to_bytes()).validate()  # written as rows (format 2)
    assert [f.to_json() for f in again.files] == [f.to_json() for f in m.files]
    bad = dumps({"format": 2, "name": "n", "owner": "user:a", "created": "x",
                 "file_fields": ["path", "type", "mode", "mtime_ns", "size", "chunks",
                                 "target", "ctime_ns", "ino"], "files": [["d/a.txt", "file"]]})
    with pytest.raises(IntegrityError, match="malformed"):
        Manifest.from_bytes(bad)


def test_manifest_is_read_row_by_row_across_steps():
    """Manifests are parsed as a stream (1 MiB steps): rows, multi-byte UTF-8 and
    numbers cut at a step boundary, and a value longer than a step, all read back
    exactly; a parent's files can be handed out one by one instead of kept."""
    rng = random.Random(7)
    files = [FileEntry(f"données/{i:06d}-é€😀.dat", size=rng.randrange(10**12),
                       mtime_ns=rng.randrange(10**18), ctime_ns=1, ino=i,
                       chunks=[rng.randbytes(32).hex() for _ in range(i % 3)])
             for i in range(20_000)]
    long_note = "ü" * (3 * 1024 * 1024)  # one value over three steps
    m = Manifest("n", "user:a", "2026-01-01", files, meta={"note": long_note},
                 stats={"files": 20_000})
    data = m.to_bytes()
    back = Manifest.from_bytes(data).validate()
    assert [f.to_row() for f in back.files] == [f.to_row() for f in files]
    assert back.meta["note"] == long_note and back.stats == {"files": 20_000}
    handed: list = []
    light = Manifest.from_bytes(data, on_file=handed.append)
    assert light.files == [] and [f.path for f in handed] == [f.path for f in files]
    for broken in (data[:len(data) // 2], b"", blobs.encode(b"x", 0)):
        with pytest.raises(IntegrityError):
            Manifest.from_bytes(broken)
    # the same from a file object (a local repository's manifest is read as parsed)
    streamed = Manifest.from_bytes(io.BufferedReader(io.BytesIO(data), 4096)).validate()
    assert [f.to_row() for f in streamed.files] == [f.to_row() for f in files]
    assert streamed.meta["note"] == long_note
    for broken in (data[:len(data) // 2], b"", b"(\xb5", blobs.encode(b"x", 0)):
        with pytest.raises(IntegrityError):
            Manifest.from_bytes(io.BytesIO(broken))


def test_chunk_index_on_disk_with_its_bloom_filter():
    """Known ids are found with their locations; unknown ones are not, including one
    that shares every Bloom-filter bit with a known id (only the table can tell)."""
    from jupyter_ext.archive.chunkindex import ChunkIndex

    rng = random.Random(8)
    ids = [rng.randbytes(32) for _ in range(5000)]
    index = ChunkIndex()
    index.add((cid, i % 7, i * 100, 90 + i, 1000 + i) for i, cid in enumerate(ids))
    index.add([(ids[0], 6, 1, 1, 1)])  # the first location of a chunk wins
    assert len(index) == 5000
    assert all(index.get(cid) == (i % 7, i * 100, 90 + i, 1000 + i) for i, cid in enumerate(ids))
    twin = ids[3][:16] + bytes(16)  # same filter bits as ids[3], another id
    assert index._maybe(twin) and index.get(twin) is None
    assert all(index.get(rng.randbytes(32)) is None for _ in range(1000))
    index.close()


def test_the_bloom_filter_grows_with_the_index_and_keeps_every_id():
    """Sized to what is expected (128 KiB at the least), rebuilt larger once it
    holds more than its share; every id added before or after is still found, a
    dropped pack's rows are not, and unknown ids mostly skip the table."""
    from jupyter_ext.archive.chunkindex import BITS_PER_CHUNK, ChunkIndex, bloom_bits

    assert bloom_bits(0) == 20 and bloom_bits(100_000) == 21 and bloom_bits(10**12) == 32
    assert len(ChunkIndex(expected=10**6)._filter[0]) * 8 >= 10**6 * BITS_PER_CHUNK
    rng = random.Random(9)
    index = ChunkIndex()
    assert len(index._filter[0]) == 128 * 1024
    ids = [rng.randbytes(32) for _ in range(70_000)]
    index.add((cid, i % 3, i, 1, 1) for i, cid in enumerate(ids[:60_000]))
    assert index._filter[1] == 20 and index.rows == 60_000
    index.add((cid, i % 3, i, 1, 1) for i, cid in enumerate(ids[60_000:], 60_000))
    assert index._filter[1] > 20 and index.rows == 70_000  # rebuilt from the table
    assert all(index._maybe(cid) for cid in ids)
    assert index.get(ids[69_999]) == (0, 69_999, 1, 1)
    unknown = [rng.randbytes(32) for _ in range(20_000)]
    assert sum(index._maybe(cid) for cid in unknown) < 200  # ~0.25 % false positives
    index.drop_pack(1)
    assert index.rows == len(index) == 70_000 - len(ids[1::3])
    assert index.get(ids[1]) is None and index.get(ids[0]) == (0, 0, 1, 1)
    index.close()


def test_local_view_maps_any_range_clipped_to_the_object(tmp_path):
    """A restore's ranged reads of a local pack: mapped, at offsets that are not page
    aligned, clipped at the end of the object (never a page past it), equal to the
    bytes a plain read returns; a missing object is NotFound."""
    from jupyter_ext.archive.errors import NotFound
    from jupyter_ext.archive.stores.local import LocalStore

    store = LocalStore(str(tmp_path), fsync=False)
    data = random.Random(3).randbytes(3 * 4096 + 123)
    store.put("data/ab/pack", data)
    for start, length in ((0, 10), (1, 4096), (4095, 4098), (8191, 10**6), (len(data), 5),
                          (len(data) + 10, 5)):
        view = store.view("data/ab/pack", start, length)
        assert bytes(view) == data[start:start + length] == store.get("data/ab/pack", start,
                                                                       length)
    with pytest.raises(NotFound):
        store.view("data/ab/nothing", 0, 10)


def test_local_view_reads_where_the_file_system_cannot_map(tmp_path, monkeypatch):
    from jupyter_ext.archive import mapping
    from jupyter_ext.archive.stores import local

    def no_mmap(*args, **kwargs):
        raise OSError(19, "No such device")

    store = local.LocalStore(str(tmp_path), fsync=False)
    data = random.Random(4).randbytes(10_000)
    store.put("data/cd/pack", data)
    monkeypatch.setattr(mapping.mmap, "mmap", no_mmap)
    assert bytes(store.view("data/cd/pack", 4097, 3000)) == data[4097:7097]
    assert bytes(store.view("data/cd/pack", 9000, 5000)) == data[9000:]


@pytest.mark.parametrize("step", [7, 1 << 20])
@pytest.mark.parametrize("compact", [True, False])
def test_iter_object_streams_list_items_across_steps(monkeypatch, step, compact):
    """The streamed list's items, whatever the text at hand cuts (a few bytes at a
    time, or all of it) and with or without blanks, are what json.loads reads."""
    import json

    import zstandard

    from jupyter_ext.archive import zjson

    rng = random.Random(3)
    items = [["ab" * 32, rng.randrange(10**9), 12, 3.5] for _ in range(200)]
    items += [1234567, "tail", {"k": [1, 2]}, None, True, -0.25e-3, []]
    doc = {"a": 1, "chunks": items, "z": "end"}
    text = (json.dumps(doc, separators=(",", ":")) if compact else json.dumps(doc, indent=2))
    data = zstandard.ZstdCompressor().compress(text.encode())
    monkeypatch.setattr(zjson, "STEP", step)
    monkeypatch.setattr(zjson._Stream.more, "__defaults__", (step,))
    got: dict = {}
    for key, value in zjson.iter_object(data, 1 << 30, "test", "chunks"):
        if key == "chunks":
            if value is not zjson.LIST_START:
                got["chunks"].append(value)
            else:
                got["chunks"] = []
        else:
            got[key] = value
    assert got == doc
    bad = zstandard.ZstdCompressor().compress(text.replace("tail", "tail\x01").encode()
                                              if not compact else b'{"chunks":[[1,2],[3,}')
    with pytest.raises(IntegrityError, match="does not decode"):
        list(zjson.iter_object(bad, 1 << 30, "test", "chunks"))


@pytest.mark.parametrize("rows", [0, 10, 4_999, 20_000])
def test_dump_is_json_dumps_compressed_whether_or_not_it_compresses_behind(rows):
    """A document with a long list is compressed on a thread while the next slice is
    encoded; the text is json.dumps's either way, and a failed write surfaces."""
    import json

    import zstandard

    from jupyter_ext.archive import zjson

    rng = random.Random(rows)
    doc = {"b": {"k": [1, 2]}, "a": "é\n", "files": [[f"p/{i}", "file", rng.random()]
                                                   for i in range(rows)]}
    out: list = []
    zjson.dump(doc, out.append)
    text = zstandard.ZstdDecompressor().decompressobj().decompress(b"".join(out))
    assert text == json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    def full(piece):
        raise OSError(28, "No space left on device")

    if rows:
        with pytest.raises(OSError, match="No space"):
            zjson.dump(doc, full)
