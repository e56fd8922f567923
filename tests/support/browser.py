"""Headless Chromium for end-to-end tests: Debian's /usr/bin/chromium driven by
Python Playwright (never `playwright install`; see docs/platform-facts.md)."""

from __future__ import annotations

import os
from contextlib import contextmanager
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


@contextmanager
def chromium_browser():
    """A Chromium for a module's tests (skipped locally, failed in CI when missing)."""
    from tests.conftest import require

    why = chromium_missing()
    require(why is None, why or "")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch(pw)
        try:
            yield chromium
        finally:
            chromium.close()


def launch(playwright):
    """A Chromium browser from Debian's package with the flags that work on this machine."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)



def wait_for_kernel(page, kernel_display_name: str, timeout_ms: float) -> None:
    """Until the status bar reads "KERNEL | Idle": the notebook is connected to its kernel.

    The notebook toolbar's execution indicator reads idle before the kernel's channels are
    connected, and a cell run in that moment is dropped (the cell advances, no count).
    """
    page.locator(".jp-StatusBar-Widget").get_by_text(f"{kernel_display_name} | Idle", exact=True).wait_for(
        state="visible", timeout=timeout_ms)
