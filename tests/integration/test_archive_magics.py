"""%archive / %archives / %restore through a real user server and the lens catalog."""

from __future__ import annotations

import os
import pwd
import secrets
from pathlib import Path

import pytest
import requests
from IPython.core.error import UsageError

from tests.integration.conftest import as_kernel_of

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def archivist(stack):
    name = "archivist"
    token = stack.create_user(name)
    stack.spawn(name, "lab")
    yield name, token
    stack.stop_server(name)


@pytest.fixture
def home(archivist, stack, monkeypatch):
    name, token = archivist
    as_kernel_of(monkeypatch, stack, name, token)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(f"jupyter-{name}")
        return Path(entry.pw_dir), entry
    return stack.state / "homes" / name, None


def write_tree(root: Path, owner) -> dict[str, bytes]:
    files = {"results/a.txt": b"alpha\n" * 1000, "results/sub/b.bin": os.urandom(300_000),
             "results/dup.bin": b"z" * 200_000}
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if owner:
        for dirpath, dirs, names in os.walk(root / "results"):
            for n in [*dirs, *names]:
                os.chown(os.path.join(dirpath, n), owner.pw_uid, owner.pw_gid)
        os.chown(root / "results", owner.pw_uid, owner.pw_gid)
    return files


def test_archive_list_restore_roundtrip(ip, home, stack, archivist, monkeypatch):
    import jupyter_ext.kernel.magics.archive as am

    monkeypatch.setattr(am, "display", lambda *a, **k: None)
    root, owner = home
    files = write_tree(root, owner)
    run = f"run-{secrets.token_hex(4)}"  # homes outlive a test stack; names must not collide
    dry = ip.run_line_magic("archive", f"results --name {run} --dry-run")
    assert dry["costs"]
    task = ip.run_line_magic("archive", f"results --name {run} --tag project=ess --wait")
    assert task["status"] == "done", task
    found = ip.run_line_magic("archives", run)
    assert [a["name"] for a in found] == [run]
    # another name, --parent: the unchanged files are taken from the first archive
    first = task["result"]["archive"]["id"]
    again = ip.run_line_magic("archive", f"results --name {run}-b --parent {first[:12]} --wait")
    assert again["status"] == "done", again
    assert again["result"]["parent"] == first and again["result"]["unchanged_files"] == 3
    # the service catalog knows it, and meters its storage
    name, token = archivist
    r = requests.get(f"{stack.url}/services/lens/api/archives", headers={"Authorization": f"token {token}"}, timeout=10)
    assert run in [a["name"] for a in r.json()["archives"]]
    plan = ip.run_line_magic("restore", f"{run} --to back-{run} --plan")
    assert plan["files"] == 3
    task = ip.run_line_magic("restore", f"{run} --to back-{run} --wait")
    assert task["status"] == "done", task
    for rel, data in files.items():
        assert (root / f"back-{run}" / rel).read_bytes() == data
    # never overwrites without --overwrite
    with pytest.raises(UsageError):
        ip.run_line_magic("restore", f"{run} --to back-{run} --wait")


def test_paths_outside_the_users_files_are_refused(ip, home, monkeypatch):
    import jupyter_ext.kernel.magics.archive as am

    monkeypatch.setattr(am, "display", lambda *a, **k: None)
    with pytest.raises(UsageError, match="outside your files"):
        ip.run_line_magic("archive", "/etc --name etc")
    with pytest.raises(UsageError, match="outside your files"):
        ip.run_line_magic("restore", "no-such-archive --to ../../tmp/x")
    with pytest.raises(UsageError, match="no such file"):
        ip.run_line_magic("archive", "does-not-exist")
    with pytest.raises(UsageError):
        ip.run_line_magic("archive", "results --class PLATINUM")


def test_another_user_cannot_see_the_catalog(stack, archivist):
    name, _ = archivist
    other = stack.create_user("archive-other")
    r = requests.get(f"{stack.url}/services/lens/api/archives?user={name}",
                     headers={"Authorization": f"token {other}"}, timeout=10)
    assert r.status_code == 403
    r = requests.get(f"{stack.url}/services/lens/api/archives", headers={"Authorization": f"token {other}"}, timeout=10)
    assert r.json()["archives"] == []
