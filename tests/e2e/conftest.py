"""End-to-end fixtures: the full stack on free ports and Chromium driven by Playwright.

Chromium is Debian's /usr/bin/chromium (Playwright cannot download browsers here); where
it is absent, Playwright's own Chromium is used if installed, else these tests skip with
the reason. Screenshots go to test-results/screenshots/ (desktop and phone width). Every
person's browser reports what the Content-Security-Policy refused: a test whose pages had
a violation (or asked htmx to eval) fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from tests.fullstack import FullStack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
POLICY_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  "CSP violation: " + e.violatedDirective + " refused " + (e.blockedURI || "inline") +
  (e.sourceFile ? " at " + e.sourceFile + ":" + e.lineNumber : "")));
document.addEventListener("htmx:evalDisallowedError", (e) => console.error(
  "CSP violation: htmx was asked to eval on " + e.target.outerHTML.slice(0, 120)));
"""


def _bundled_chromium() -> str | None:
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            path = p.chromium.executable_path
    except Exception:
        return None
    return path if path and os.path.exists(path) else None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if os.path.exists(CHROMIUM):
        return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}
    if _bundled_chromium() is None:
        pytest.skip(f"no Chromium: install Debian's chromium ({CHROMIUM}) or run "
                    "`playwright install chromium`")
    return {**browser_type_launch_args, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def stack(full_stack: FullStack) -> FullStack:
    """The session's stack (tests/conftest.py), shared with the API tests."""
    return full_stack


@pytest.fixture(scope="session")
def base_url(stack: FullStack) -> str:
    return stack.web_url


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], None]:
    """`screenshot(page, name)`: <name>-desktop.png and <name>-phone.png of the page."""
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)

    def shoot(page: Page, name: str) -> None:
        before = page.viewport_size
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
        if before is not None:
            page.set_viewport_size(before)

    return shoot


def watch_policy(context: BrowserContext, violations: list[str]) -> None:
    """Appends to `violations` what the Content-Security-Policy refused on the context's
    pages (Chromium's "Refused to ..." messages and securitypolicyviolation events), and
    every eval htmx refused."""
    context.add_init_script(POLICY_WATCH)

    def on_console(message: ConsoleMessage) -> None:
        text = message.text
        if text.startswith("CSP violation") or "Content Security Policy" in text:
            violations.append(f"{message.page.url if message.page else '?'}: {text}")

    context.on("console", on_console)


@pytest.fixture
def people(browser: Browser, stack: FullStack) -> Iterator[Callable[[], Page]]:
    """Opens a new person's browser (its own context, so its own wallet) on the wallet; at
    the end, no page of theirs may have had a Content-Security-Policy violation."""
    contexts: list[BrowserContext] = []
    violations: list[str] = []

    def open_person() -> Page:
        context = browser.new_context(base_url=stack.web_url)
        contexts.append(context)
        watch_policy(context, violations)
        page = context.new_page()
        page.goto("/")
        expect(page.get_by_test_id("balance-ETH")).to_be_visible()
        return page

    yield open_person
    for context in contexts:
        context.close()
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)
