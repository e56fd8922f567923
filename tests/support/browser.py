"""Headless Chromium for end-to-end tests: Debian's /usr/bin/chromium driven by
Python Playwright (never `playwright install`; see docs/platform-facts.md)."""

from __future__ import annotations

import os
from pathlib import Path

from .hub import REPO

CHROMIUM = os.environ.get("LENS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("LENS_ARTIFACTS_DIR", REPO / "artifacts")) / "browser"


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -e '.[test]')"
    return None


def launch(playwright):
    """A Chromium browser from Debian's package with the flags that work on this machine."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

