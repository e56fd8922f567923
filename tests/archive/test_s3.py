"""S3 against moto's standalone server: storage classes, hot/cold split, SSE,
multipart, Glacier thaw that really waits, resumable restore, lifecycle."""

from __future__ import annotations

import time
import uuid

import boto3
import pytest
import requests

from jupyter_ext.archive.errors import ObjectArchived
from jupyter_ext.cli.main import main as lens

from .helpers import ALICE, engine, make_tree, snapshot

pytestmark = pytest.mark.aws


@pytest.fixture
def bucket(aws_env):
    name = f"lens-archive-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def slow_thaw(aws_env):
    """Glacier restores need several polls per step (moto's state manager, "manual"
    progression: each HEAD/GET ticks the object, a step takes 4 ticks)."""
    url = f"{aws_env}/moto-api/state-manager"
    requests.post(f"{url}/set-transition", timeout=5, json={
        "model_name": "s3::keyrestore", "transition": {"progression": "manual", "times": 4}})
    yield
    requests.post(f"{url}/unset-transition", timeout=5, json={"model_name": "s3::keyrestore"})


def test_classes_hot_cold_split_and_sse(tmp_path, bucket):
    src = make_tree(str(tmp_path / "src"))
    eng = engine(f"s3://{bucket}/lens", sse="AES256")
    eng.create([src], owner="alice", principal=ALICE, name="a", storage_class="DEEP_ARCHIVE")
    s3 = boto3.client("s3")
    objs = s3.list_objects_v2(Bucket=bucket, Prefix="lens/")["Contents"]
    classes = {}
    for o in objs:
        kind = o["Key"].split("/")[3]
        classes.setdefault(kind, set()).add(o.get("StorageClass", "STANDARD"))
    assert classes["data"] == {"DEEP_ARCHIVE"}
    for kind in ("index", "manifests", "archives"):
        assert classes[kind] == {"STANDARD"}, kind
    key = next(o["Key"] for o in objs if "/data/" in o["Key"])
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    # listing, searching and planning need no thaw
    assert eng.list(owner="alice", principal=ALICE, path="data/*.csv")
    plan = eng.plan("a", owner="alice", principal=ALICE)
    assert plan.cold_packs and plan.thaw_bytes > 0
    assert {e.tier for e in plan.estimates} == {"bulk", "standard"}  # no expedited for Deep
    with pytest.raises(ObjectArchived):
        eng.store.get(eng.repo("alice", ALICE).pack_key(plan.cold_packs[0]))
    report = eng.check(owner="alice", principal=ALICE, read_data=True)
    assert report.ok and report.packs_skipped_cold == report.packs


@pytest.mark.parametrize("storage_class", ["STANDARD_IA", "GLACIER_IR", "INTELLIGENT_TIERING"])
def test_instant_classes_round_trip(tmp_path, bucket, storage_class):
    src = make_tree(str(tmp_path / "src"))
    eng = engine(f"s3://{bucket}/p")
    eng.create([src], owner="alice", principal=ALICE, name="a", storage_class=storage_class)
    plan = eng.plan("a", owner="alice", principal=ALICE)
    assert not plan.cold_packs
    s3 = boto3.client("s3")
    key = "p/" + eng.repo("alice", ALICE).pack_key(next(iter(plan.packs)))
    assert s3.head_object(Bucket=bucket, Key=key)["StorageClass"] == storage_class
    # data packs carry the tag the lifecycle rules filter on (metadata does not)
    tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    assert {"Key": "lens-kind", "Value": "data"} in tags
    eng.restore("a", target=str(tmp_path / "out"), owner="alice", principal=ALICE)
    assert snapshot(str(tmp_path / "out" / "data")) == snapshot(src)


def test_multipart_uploads(tmp_path, bucket):
    src = tmp_path / "big"
    src.mkdir()
    (src / "blob.bin").write_bytes(__import__("random").Random(3).randbytes(12 * 1024 * 1024))
    eng = engine(f"s3://{bucket}/mp", pack_size=12 * 1024 * 1024, chunk_avg_size=1024 * 1024,
                 multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    eng.create([str(src)], owner="alice", principal=ALICE, name="big")
    s3 = boto3.client("s3")
    etags = [o["ETag"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="mp/")["Contents"]
             if "/data/" in o["Key"]]
    assert any("-" in e for e in etags), etags  # multipart ETags end in -<parts>
    eng.restore("big", target=str(tmp_path / "out"), owner="alice", principal=ALICE)
    assert (tmp_path / "out/big/blob.bin").read_bytes() == (src / "blob.bin").read_bytes()
    assert eng.check(owner="alice", principal=ALICE, read_data=True).ok


def test_glacier_restore_waits_and_resumes(tmp_path, bucket, slow_thaw):
    src = make_tree(str(tmp_path / "src"))
    url = f"s3://{bucket}/g"
    eng = engine(url, poll_interval=0.3)
    eng.create([src], owner="alice", principal=ALICE, name="a", storage_class="GLACIER")
    out = tmp_path / "out"
    # first call: thaws requested, nothing written, state persisted in the repository
    first = eng.restore("a", target=str(out), owner="alice", principal=ALICE, tier="bulk",
                        wait=False)
    assert first["state"]["status"] == "thawing"
    requested = dict(first["state"]["thaw_requested"])
    assert set(requested) == set(eng.plan("a", owner="alice", principal=ALICE).cold_packs)
    assert not out.exists() or not any(out.rglob("*.csv"))
    s3 = boto3.client("s3")
    key = eng.repo("alice", ALICE).pack_key(next(iter(requested)))
    assert 'ongoing-request="true"' in s3.head_object(Bucket=bucket, Key="g/" + key)["Restore"]
    # a new engine (a server restart) resumes: no new RestoreObject, it waits, then restores
    eng2 = engine(url, poll_interval=0.3)
    states = eng2.restores(owner="alice", principal=ALICE)
    assert [s["status"] for s in states] == ["thawing"]
    t0 = time.monotonic()
    second = eng2.restore("a", target=str(out), owner="alice", principal=ALICE, timeout=60)
    waited = time.monotonic() - t0
    assert second["state"]["status"] == "done"
    assert second["state"]["thaw_requested"] == requested
    assert waited >= 0.6, "the thaw path did not wait"
    assert snapshot(str(out / "data")) == snapshot(src)


def test_glacier_restore_times_out_then_resumes(tmp_path, bucket, aws_env):
    url = f"{aws_env}/moto-api/state-manager"
    requests.post(f"{url}/set-transition", timeout=5, json={
        "model_name": "s3::keyrestore", "transition": {"progression": "manual", "times": 3}})
    try:
        src = make_tree(str(tmp_path / "src"))
        eng = engine(f"s3://{bucket}/m", poll_interval=0.05)
        eng.create([src], owner="alice", principal=ALICE, name="a", storage_class="GLACIER")
        with pytest.raises(Exception, match="still thawing"):
            eng.restore("a", target=str(tmp_path / "o"), owner="alice", principal=ALICE,
                        timeout=0.01)
        res = eng.restore("a", target=str(tmp_path / "o"), owner="alice", principal=ALICE,
                          timeout=60)
        assert res["state"]["status"] == "done"
        assert snapshot(str(tmp_path / "o" / "data")) == snapshot(src)
    finally:
        requests.post(f"{url}/unset-transition", timeout=5,
                      json={"model_name": "s3::keyrestore"})


def test_cli_lifecycle_apply(bucket, capsys):
    s3 = boto3.client("s3")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "theirs", "Filter": {"Prefix": "other/"}, "Status": "Enabled",
         "Expiration": {"Days": 5}}]})
    assert lens(["archive", "lifecycle", "apply", "--template", "archive-optimization",
                 "--repo", f"s3://{bucket}/lens"]) == 0
    rules = {r["ID"]: r for r in
             s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert set(rules) == {"theirs", "lens-archive-optimization-data",
                          "lens-archive-optimization-abort-mpu"}
    data = rules["lens-archive-optimization-data"]
    assert [(t["Days"], t["StorageClass"]) for t in data["Transitions"]] == [
        (30, "STANDARD_IA"), (90, "GLACIER"), (365, "DEEP_ARCHIVE")]
    assert rules["lens-archive-optimization-abort-mpu"]["AbortIncompleteMultipartUpload"]
    # re-applying another template replaces the lens rules only
    assert lens(["archive", "lifecycle", "apply", "--template", "intelligent-tiering",
                 "--repo", f"s3://{bucket}/lens"]) == 0
    ids = {r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert ids == {"theirs", "lens-intelligent-tiering-data", "lens-intelligent-tiering-abort-mpu"}
    with pytest.raises(SystemExit):
        lens(["archive", "lifecycle", "apply", "--template", "bogus",
              "--repo", f"s3://{bucket}/lens"])
    assert "bogus" in capsys.readouterr().err


def test_kms_encryption_and_usage(tmp_path, bucket):
    key_id = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
    src = make_tree(str(tmp_path / "src"))
    eng = engine(f"s3://{bucket}/k", sse="aws:kms", kms_key_id=key_id)
    eng.create([src], owner="alice", principal=ALICE, name="a", storage_class="GLACIER")
    s3 = boto3.client("s3")
    key = next(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="k/")["Contents"]
               if "/data/" in o["Key"])
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert key_id in head["SSEKMSKeyId"]
    usage = eng.usage(owner="alice", principal=ALICE)
    assert usage["classes"]["GLACIER"]["objects"] >= 1
    assert usage["classes"]["STANDARD"]["objects"] >= 3  # index, manifest, entry, config
    assert usage["monthly_micro"] == sum(c["monthly_micro"] for c in usage["classes"].values())


def test_index_cache_serves_restarts(tmp_path, bucket):
    src = make_tree(str(tmp_path / "src"))
    cache = tmp_path / "cache"
    eng = engine(f"s3://{bucket}/c", cache_dir=str(cache))
    eng.create([src], owner="alice", principal=ALICE, name="a")
    eng2 = engine(f"s3://{bucket}/c", cache_dir=str(cache))
    packs = eng2.repo("alice", ALICE).packs
    cached = list(cache.rglob("index/*"))
    assert packs and len(cached) == len(packs)
    # a corrupt cache entry is ignored and refetched
    cached[0].write_bytes(b"junk")
    eng3 = engine(f"s3://{bucket}/c", cache_dir=str(cache))
    assert set(eng3.repo("alice", ALICE).packs) == set(packs)
    eng3.restore("a", target=str(tmp_path / "o"), owner="alice", principal=ALICE)
    assert snapshot(str(tmp_path / "o" / "data")) == snapshot(src)


def test_missing_bucket_is_a_clear_error(tmp_path, aws_env, capsys):
    src = make_tree(str(tmp_path / "src"))
    code = lens(["archive", "create", src, "--repo", "s3://no-such-bucket-lens/x",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "no-such-bucket-lens" in err and "NoSuchBucket" in err


def test_cli_glacier_restore_no_wait_then_resume(tmp_path, bucket, slow_thaw, capsys):
    src = make_tree(str(tmp_path / "src"))
    repo = f"s3://{bucket}/cli"
    assert lens(["archive", "create", src, "--repo", repo, "--name", "g", "--class", "GLACIER",
                 "--no-progress"]) == 0
    dest = str(tmp_path / "out")
    capsys.readouterr()
    assert lens(["archive", "restore", "g", "--repo", repo, "--to", dest, "--tier", "standard",
                 "--no-wait", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "to thaw:" in out and "standard" in out and "still thawing" in out
    assert lens(["archive", "restore", "g", "--repo", repo, "--to", dest, "--poll-interval",
                 "0.2", "--timeout", "60", "--no-progress"]) == 0
    assert "restored" in capsys.readouterr().out
    assert snapshot(dest + "/data") == snapshot(src)


def test_reader_processes_pack_small_files_for_s3(tmp_path, bucket, monkeypatch):
    """With reader processes, small files' packs are built by the readers in
    private temp files, uploaded, and gone afterwards; a dry run leaves none either."""
    import random

    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    monkeypatch.setattr("tempfile.tempdir", None)  # TMPDIR is read again
    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(9)
    for i in range(400):
        (src / f"f{i:03}").write_bytes(rng.randbytes(rng.randint(0, 3000)) if i % 2
                                       else f"row {i}\n".encode() * rng.randint(1, 300))
    (src / "copy").write_bytes((src / "f001").read_bytes())  # a repeat: packed once
    eng = engine(f"s3://{bucket}/r", readers_from=1, reader_processes=2)
    dry = eng.create([str(src)], owner="alice", principal=ALICE, name="d", dry_run=True)
    assert dry["progress"]["packs"] >= 2 and not list(spool.iterdir())
    eng.create([str(src)], owner="alice", principal=ALICE, name="a")
    assert not list(spool.iterdir())
    assert eng.check(owner="alice", principal=ALICE, read_data=True).ok
    eng.restore("a", target=str(tmp_path / "out"), owner="alice", principal=ALICE)
    assert snapshot(str(tmp_path / "out" / "src")) == snapshot(str(src))
