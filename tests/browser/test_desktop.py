"""The desktop profile in Chromium: through the real hub login, the noVNC page draws the
XFCE desktop, follows the window's size, and a terminal opened with keys sent through
noVNC runs `id` as the user; the clipboard goes both ways (docs/desktop.md).

Screenshots go to artifacts/browser/desktop/.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.browser.test_e2e import log_in, open_form, start_from_form
from tests.conftest import require
from tests.support.browser import ARTIFACTS
from tests.support.desktop import DESKTOP_MISSING, desktop_installed

pytestmark = pytest.mark.browser
SPAWN_TIMEOUT_MS = 120_000
UI_TIMEOUT_MS = 60_000
SHOTS = ARTIFACTS / "desktop"

# Distinct colours in a sample of the noVNC canvas: 1 while blank, many once XFCE's panel,
# icons and text are drawn.
CANVAS_COLOURS = """() => {
  const c = document.querySelector('#screen canvas');
  if (!c || !c.width) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const seen = new Set();
  for (let i = 0; i < d.length; i += 4 * 97) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
  return seen.size;
}"""


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def wait_until(condition, timeout: float, what: str, step: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def unix_user(name: str) -> str | None:
    return f"jupyter-{name}" if os.geteuid() == 0 else None


def home_of(stack, name: str) -> Path:
    if os.geteuid() == 0:
        return Path("/home") / f"jupyter-{name}"
    return stack.state / "homes" / name


def read_as(user: str | None, path: Path) -> str | None:
    """The file's text as the user reads it (runuser as root), or None while it is missing."""
    argv = ["runuser", "-u", user, "--", "cat", str(path)] if user else ["cat", str(path)]
    out = subprocess.run(argv, capture_output=True, text=True)
    return out.stdout if out.returncode == 0 and out.stdout.strip() else None


def exists_as(user: str | None, path: Path) -> bool:
    """Whether the file exists as the user sees it (runuser as root)."""
    argv = ["runuser", "-u", user, "--", "test", "-e", str(path)] if user else ["test", "-e", str(path)]
    return subprocess.run(argv, capture_output=True).returncode == 0


def type_in_terminal(page, command: str) -> None:
    page.keyboard.type(command, delay=15)
    page.keyboard.press("Enter")


def test_desktop_draws_resizes_and_runs_a_terminal(browser, stack, account):
    require(desktop_installed(), DESKTOP_MISSING)
    name, password = account
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=stack.url)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    try:
        log_in(page, name, password, lambda *a: None)
        labels = open_form(page)
        desktop = labels["desktop"]
        assert desktop.query_selector('input[name="profile"]').is_enabled()
        assert desktop.query_selector(".lens-reason") is None
        listed = desktop.inner_text()
        assert "Applications here: Terminal, Files (Thunar), ncview (netCDF viewer)" in listed, listed

        t0 = start_from_form(page, "desktop")
        page.wait_for_url(re.compile(rf"/user/{name}/desktop/"), timeout=SPAWN_TIMEOUT_MS)
        page.locator("#screen canvas").wait_for(state="visible", timeout=SPAWN_TIMEOUT_MS)
        blank = shot(page, "01-connecting")
        colours = wait_until(lambda: (n := page.evaluate(CANVAS_COLOURS)) >= 16 and n, 90, "XFCE to draw")
        print(f"desktop: submit -> drawn {time.monotonic() - t0:.1f} s ({colours} colours sampled)")
        drawn = shot(page, "02-xfce")
        assert drawn.read_bytes() != blank.read_bytes()
        assert page.inner_text("#status").strip().lower().startswith("connected")

        # -- resize to the window: noVNC asks Xvnc for the page's size (SetDesktopSize)
        def fb_matches_screen():
            return page.evaluate("""() => { const c = document.querySelector('#screen canvas');
                const s = document.getElementById('screen');
                return [c.width, c.height, s.clientWidth, s.clientHeight]; }""")

        wait_until(lambda: (d := fb_matches_screen())[0] == d[2] and d[1] == d[3], 30, "the first fit")
        page.set_viewport_size({"width": 1000, "height": 700})
        sizes = wait_until(lambda: (d := fb_matches_screen())[0] == d[2] == 1000 and d[1] == d[3] and d,
                           30, "the desktop to follow the window")
        print(f"resized: framebuffer {sizes[0]}x{sizes[1]}")
        shot(page, "03-resized")

        # -- a terminal from XFCE's Ctrl+Alt+T, keys through noVNC; `id` into a file
        user = unix_user(name)
        home = home_of(stack, name)
        page.locator("#screen canvas").click(position={"x": 500, "y": 300})
        out = home / "desktop-id.txt"
        text = None
        for attempt in range(3):
            if not terminal_running(user):
                page.keyboard.press("Control+Alt+t")
                wait_until(lambda: terminal_running(user), 30, "xfce4-terminal to start")
            # keys typed before its window has the focus are lost: then type them again
            type_in_terminal(page, f"id > {out}")
            try:
                text = wait_until(lambda: read_as(user, out), 15, "the terminal to write id")
                break
            except AssertionError:
                shot(page, f"04-terminal-attempt-{attempt + 1}")
                if attempt == 2:
                    raise
        shot(page, "04-terminal")
        expected = user or os.environ.get("USER", "")
        assert re.search(rf"uid=\d+\({re.escape(expected)}\)", text), text

        # -- clipboard, browser -> desktop: the page's clipboard box, pasted in the terminal.
        # The paste arrives asynchronously (the terminal asks Xvnc, Xvnc asks the page), so
        # the shell reads it byte by byte (no Enter needed, whenever it comes).
        clip = "lens-clip-in"
        pasted = home / "desktop-clip.txt"
        type_in_terminal(page, f"stty -icanon; head -c {len(clip)} > {pasted}; stty icanon")
        page.click("#clipboard-button")
        page.fill("#clipboard-text", clip)
        page.locator("#clipboard-text").dispatch_event("change")
        page.click("#clipboard-button")
        page.locator("#screen canvas").click(position={"x": 500, "y": 300})
        page.keyboard.press("Control+Shift+V")  # the keysym V: Xvnc makes exactly the keysym sent
        try:
            assert wait_until(lambda: read_as(user, pasted), 20, "the pasted text") == clip
        finally:
            shot(page, "05-pasted")

        # -- clipboard, desktop -> browser: select all in the terminal (the X selection).
        # Output arriving after the select-all clears the selection (VTE drops a selection
        # whose text changes), so select only once the shell has finished and gone quiet,
        # and select again if the text still did not come.
        echoed = home / "desktop-echoed.txt"
        type_in_terminal(page, f"echo lens-clip-out; touch {echoed}")
        wait_until(lambda: exists_as(user, echoed), 20,
                   "the shell to run the echo")
        for attempt in range(3):
            time.sleep(1)
            page.keyboard.press("Control+Shift+A")
            try:
                wait_until(lambda: "lens-clip-out" in page.input_value("#clipboard-text"), 10,
                           "the desktop's selection in the page's clipboard box")
                break
            except AssertionError:
                shot(page, f"06-copy-attempt-{attempt + 1}")
                if attempt == 2:
                    raise
        shot(page, "06-copied")
    finally:
        context.close()
        if stack.api("GET", f"/users/{name}").json().get("servers"):
            stack.stop_server(name)


def terminal_running(user: str | None) -> bool:
    argv = ["pgrep", "-x", "xfce4-terminal"] + (["-u", user] if user else [])
    return subprocess.run(argv, capture_output=True).returncode == 0
