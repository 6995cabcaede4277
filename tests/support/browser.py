"""Debian's Chromium driven by Python Playwright (never `playwright install`), and screenshots."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.system import CHROMIUM, REPO

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
SCREENSHOT_ROOT = REPO / "test-output" / "screenshots"


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:120] or "test"


class Screenshots:
    """``shots(page, "signup-form")`` -> ``test-output/screenshots/<test>/01-signup-form.png``."""

    def __init__(self, test_name: str, root: Path = SCREENSHOT_ROOT) -> None:
        self.folder = root / safe_name(test_name)
        self.count = 0
        self.saved: list[Path] = []
        if self.folder.exists():
            for old in self.folder.glob("*.png"):
                old.unlink()

    def __call__(self, page, step: str, *, full_page: bool = True) -> Path:
        self.count += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.count:02d}-{safe_name(step)}.png"
        page.screenshot(path=str(path), full_page=full_page)
        self.saved.append(path)
        return path
