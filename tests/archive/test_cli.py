"""``lens archive ...`` through the real dispatcher."""

from __future__ import annotations

import json

import pytest

from jupyter_ext.cli.main import main as lens

from .helpers import make_tree, snapshot


def run(capsys, *argv) -> tuple[int, str, str]:
    code = lens(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_create_ls_restore_check(tmp_path, capsys):
    src = make_tree(str(tmp_path / "src"))
    repo = str(tmp_path / "repo")
    code, out, _ = run(capsys, "archive", "create", src, "--repo", repo, "--name", "exp1",
                       "--tag", "project=ice", "--meta", "pi=ada", "--json", "--no-progress")
    assert code == 0
    created = json.loads(out)["archive"]
    assert created["tags"] == {"project": "ice"} and created["meta"] == {"pi": "ada"}
    code, out, _ = run(capsys, "archive", "ls", "--repo", repo, "--tag", "project=ice")
    assert code == 0 and "exp1" in out and created["id"][:12] in out
    code, out, _ = run(capsys, "archive", "ls", "--repo", repo, "--path", "*.nothing")
    assert out.strip() == "no archives"
    code, out, _ = run(capsys, "archive", "restore", "exp1", "--repo", repo, "--plan")
    assert code == 0 and "to thaw: 0 objects" in out and "bulk" in out
    dest = tmp_path / "out"
    code, out, _ = run(capsys, "archive", "restore", "exp1", "--repo", repo, "--to", str(dest),
                       "--no-progress")
    assert code == 0 and "restored" in out
    assert snapshot(str(dest / "data")) == snapshot(src)
    # a second restore into the same place refuses to overwrite
    code, _, err = run(capsys, "archive", "restore", "exp1", "--repo", repo, "--to", str(dest),
                       "--no-progress")
    assert code == 2 and "--overwrite" in err
    code, out, _ = run(capsys, "archive", "check", "--repo", repo, "--read-data")
    assert code == 0 and out.strip().endswith("ok")
    code, out, _ = run(capsys, "archive", "show", "exp1", "--repo", repo)
    assert "data/table.csv" in out and "-> nested/notes.txt" in out
    # a new name reuses the unchanged files of exp1; --parent names it explicitly
    code, out, _ = run(capsys, "archive", "create", src, "--repo", repo, "--name", "exp2",
                       "--parent", created["id"][:10], "--json", "--no-progress")
    second = json.loads(out)
    assert code == 0 and second["parent"] == created["id"] and second["unchanged_files"] == 4


def test_dry_run_and_errors(tmp_path, capsys):
    src = make_tree(str(tmp_path / "src"))
    repo = str(tmp_path / "repo")
    code, out, _ = run(capsys, "archive", "create", src, "--repo", repo, "--dry-run",
                       "--class", "DEEP_ARCHIVE", "--no-progress")
    assert code == 0 and "DEEP_ARCHIVE" in out and "min days" in out
    code, _, err = run(capsys, "archive", "create", src, "--repo", repo, "--tag", "oops")
    assert code == 2 and "tag" in err and "KEY=VALUE" in err
    code, _, err = run(capsys, "archive", "ls", "--repo", repo, "--owner", "user:someoneelse")
    assert code == 2 and "may not use" in err
    code, _, err = run(capsys, "archive", "restore", "nope", "--repo", repo, "--to", "x")
    assert code == 2
    code, _, err = run(capsys, "archive", "lifecycle", "apply", "--repo", repo,
                       "--template", "fast-access")
    assert code == 2 and "only S3" in err
    with pytest.raises(SystemExit):
        lens(["archive", "create", src, "--class", "COLD"])
