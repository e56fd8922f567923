"""An instructor's server shared with their workshop's seats: who may, checked before
the hub is asked (the share itself is JupyterHub's, on the workshop's hub group)."""

from __future__ import annotations

from datetime import datetime

from .model import Workshop


def share_refusal(ws: Workshop | None, name: str, instructor: str, *, revoke: bool = False,
                  now: datetime | None = None) -> str | None:
    """Why INSTRUCTOR's server cannot be shared with workshop NAME's group, or None.

    Revoking is always allowed for a known instructor, even once the workshop has
    ended: taking access away must never be refused."""
    if ws is None:
        return f"no workshop {name!r}"
    if instructor not in ws.instructors:
        listed = ", ".join(ws.instructors) or "none (see `lens workshop create --instructors`)"
        return f"{instructor!r} is not an instructor of workshop {ws.name!r}; its instructors: {listed}"
    if not revoke and not ws.active(now):
        return f"workshop {ws.name!r} is {ws.state(now)}: its seats cannot be given a share"
    return None
