"""Prewarm holds (jupyter_ext/workshop/prewarm.py) and the culler's use of them."""

from __future__ import annotations

import runpy
from datetime import datetime, timedelta
from pathlib import Path

from jupyter_ext.workshop.prewarm import held, held_seconds, read_holds, write_holds

NOW = datetime(2026, 12, 5, 8, 0)


def test_holds_merge_and_expire(tmp_path):
    assert read_holds(tmp_path) == {}
    write_holds(tmp_path, {"a-01": NOW + timedelta(hours=1)}, NOW)
    write_holds(tmp_path, {"a-02": NOW + timedelta(hours=2), "old": NOW - timedelta(hours=1)}, NOW)
    assert read_holds(tmp_path) == {"a-01": NOW + timedelta(hours=1), "a-02": NOW + timedelta(hours=2)}
    assert held("a-02", tmp_path, NOW) == 7200 and held("nobody", tmp_path, NOW) == 0
    assert held_seconds(NOW - timedelta(seconds=5), NOW) == 0
    (tmp_path / "workshops" / "prewarm-holds.json").write_text("not json")
    assert read_holds(tmp_path) == {}


def test_the_culler_leaves_held_servers_alone(tmp_path, monkeypatch):
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("LENS_PROFILES", str(repo / "hub_config" / "profiles.yaml"))
    monkeypatch.setenv("LENS_STATE_DIR", str(tmp_path))

    class Config:
        class IdleCuller:
            pass

    config = runpy.run_path(str(repo / "hub_config" / "idle_culler_config.py"),
                            init_globals={"get_config": lambda: Config})
    arbiter = Config.IdleCuller.cull_arbiter_hook
    assert config["server_owner"]({"url": "/user/ws-01/"}) == "ws-01"
    assert config["server_owner"]({"url": "/hub/user/x%2Dy/named/"}) == "x-y"
    idle = {"inactive": timedelta(hours=5), "inactive_limit": 3600,
            "server": {"url": "/user/ws-01/", "user_options": {"profile": "lab"}}}
    assert arbiter(**idle) is True
    now = datetime.utcnow()
    write_holds(tmp_path, {"ws-01": now + timedelta(hours=1)}, now)
    assert arbiter(**idle) is False
    assert arbiter(**{**idle, "server": {"url": "/user/ws-02/", "user_options": {}}}) is True
