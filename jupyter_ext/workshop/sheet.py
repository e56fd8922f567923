"""Credentials sheets: a CSV and a printable HTML page with one card per seat.

Pure rendering. The files hold clear-text passwords, so the CLI writes them
with mode 0600 into the state directory; the accounts store only hashes.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from html import escape

from ..csvsafe import safe_row, unguard_cell
from .model import Workshop

CSV_FIELDS = ("workshop", "username", "password", "display_name", "role", "login_url", "expires_utc")
UNCHANGED = "(unchanged: see the first sheet)"
EXISTING = "(existing account: password unchanged)"  # an adopted account: lens never set its password


@dataclass(frozen=True)
class Credential:
    username: str
    password: str  # UNCHANGED when set on an earlier run and not known; EXISTING for an adopted account
    display_name: str = ""
    role: str = "student"


def render_csv(ws: Workshop, creds: list[Credential], login_url: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    expires = f"{ws.expires_at:%Y-%m-%d %H:%M}" if ws.expires_at else ""
    for c in creds:
        # display names come from the roster: never let a spreadsheet run them as formulas
        writer.writerow(safe_row((ws.name, c.username, c.password, c.display_name, c.role,
                                  login_url, expires)))
    return out.getvalue()


def read_csv(text: str) -> dict[str, str]:
    """Known passwords from an earlier sheet (username -> password)."""
    known = {}
    for row in csv.DictReader(io.StringIO(text)):
        user, password = unguard_cell(row.get("username") or ""), unguard_cell(row.get("password") or "")
        if user and password and password not in (UNCHANGED, EXISTING):
            known[user] = password
    return known


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:12mm;color:#111}
h1{font-size:16pt;margin:0 0 2mm} .meta{font-size:9pt;color:#444;margin-bottom:6mm}
.cards{display:grid;grid-template-columns:repeat(2,1fr);gap:6mm}
.card{border:1.5px dashed #888;border-radius:3mm;padding:5mm 6mm;break-inside:avoid;page-break-inside:avoid}
.card h2{font-size:11pt;margin:0 0 3mm;color:#1f4e79} .card .role{float:right;font-size:8pt;color:#666;text-transform:uppercase}
.row{margin:1.5mm 0;font-size:10pt} .label{display:inline-block;width:22mm;color:#555}
.value{font-family:'DejaVu Sans Mono',Menlo,monospace;font-size:12pt;font-weight:600;letter-spacing:.3px}
.url{font-family:'DejaVu Sans Mono',monospace;font-size:9pt;word-break:break-all}
.foot{font-size:8pt;color:#666;margin-top:3mm}
@media print{body{margin:8mm}.noprint{display:none}}
"""


def render_html(ws: Workshop, creds: list[Credential], login_url: str) -> str:
    expires = f"{ws.expires_at:%Y-%m-%d %H:%M} UTC" if ws.expires_at else "no expiry"
    cards = []
    for c in creds:
        who = f" — {escape(c.display_name)}" if c.display_name else ""
        cards.append(
            f'<div class="card" data-username="{escape(c.username)}">'
            f'<span class="role">{escape(c.role)}</span>'
            f"<h2>{escape(ws.name)}{who}</h2>"
            f'<div class="row"><span class="label">Go to</span><span class="url">{escape(login_url)}</span></div>'
            f'<div class="row"><span class="label">Username</span><span class="value username">{escape(c.username)}</span></div>'
            f'<div class="row"><span class="label">Password</span><span class="value password">{escape(c.password)}</span></div>'
            + (
                '<div class="foot">Your existing account: sign in with your own password.</div>'
                if c.password == EXISTING
                else f'<div class="foot">Valid until {escape(expires)}. Your course material opens on first login.</div>'
                if c.role == "student"
                else '<div class="foot">Instructor account: it does not expire with the workshop.</div>'
            )
            + "</div>"
        )
    profiles = ", ".join(ws.profiles) or "all"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(ws.name)}: credentials</title><style>{CSS}</style></head><body>"
        f"<h1>Workshop {escape(ws.name)}</h1>"
        f'<div class="meta">{len(creds)} card(s) · environments: {escape(profiles)} · expires {escape(expires)}'
        '<span class="noprint"> · print this page and cut along the dashed lines</span></div>'
        f'<div class="cards">{"".join(cards)}</div></body></html>'
    )
