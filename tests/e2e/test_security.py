"""The wallet runs only its own scripts: every screen, loaded and swapped in by htmx, shows
under the Content-Security-Policy with no violation and no inline code in its page, while
its live socket connects. (Every other browser test checks for violations too: the `people`
fixture fails a test whose pages had one.)"""

from __future__ import annotations

import time

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import watch_policy
from tests.fullstack import FullStack

SCREENS = ["Deposit", "Send", "Request", "Links", "Streams", "Oracle", "Cash out",
           "Activity", "Channel", "Settings", "Demo", "Home"]

INLINE_CODE = """() => {
  const found = [];
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      if (/^(data-)?(on|hx-on)/.test(name) || name === "style") found.push(el.tagName + " " + name);
      if (/^\\s*javascript:/i.test(attr.value)) found.push(el.tagName + " javascript: URL");
    }
  }
  document.querySelectorAll("script:not([src])").forEach(() => found.push("inline script"));
  return found;
}"""


def wait_for(check: list[str], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check and time.monotonic() < deadline:
        time.sleep(0.05)


def test_every_screen_runs_under_the_policy_with_no_inline_code(
        browser: Browser, stack: FullStack) -> None:
    context = browser.new_context(base_url=stack.web_url)
    violations: list[str] = []
    watch_policy(context, violations)
    try:
        page: Page = context.new_page()
        response = page.goto("/")
        assert response is not None
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "unsafe" not in policy
        expect(page.locator("body")).to_have_attribute("data-live", "on")  # Socket.IO is up
        nav = page.get_by_role("navigation", name="Wallet")
        for label in SCREENS:  # boosted navigation: htmx fetches each screen and swaps it in
            nav.get_by_role("link", name=label, exact=True).click()
            expect(nav.get_by_role("link", name=label, exact=True)).to_have_attribute(
                "aria-current", "page")
            expect(page.locator("main h1")).to_be_visible()
            assert page.evaluate(INLINE_CODE) == [], label
        page.goto("/redeem#not-a-real-code")  # the one screen without a tab
        expect(page.locator("main h1")).to_be_visible()
        assert page.evaluate(INLINE_CODE) == []
        expect(page.locator("body")).to_have_attribute("data-live", "on")
        assert violations == []

        # the watch is not blind: an inline script is refused and reported
        page.evaluate("""() => { const s = document.createElement("script");
                                 s.textContent = "window.__ran = true";
                                 document.head.append(s); }""")
        wait_for(violations)
        assert page.evaluate("window.__ran === undefined")
        assert any("script-src" in v for v in violations), violations
    finally:
        context.close()


def test_a_live_refresh_never_applies_an_inline_style(browser: Browser, stack: FullStack) -> None:
    """A style set through the CSSOM (allowed: the browser or a tool may do it, e.g. while
    a screenshot is taken) must not be copied by htmx's settle step as a style attribute
    (refused by style-src): a clean run's oracle page had that violation."""
    context = browser.new_context(base_url=stack.web_url)
    violations: list[str] = []
    watch_policy(context, violations)
    try:
        page: Page = context.new_page()
        page.goto("/")
        expect(page.locator("body")).to_have_attribute("data-live", "on")
        section = page.get_by_label("Balances")
        expect(section).to_be_visible()
        page.evaluate("""() => {
            const section = document.querySelector("[aria-label=Balances]");
            section.style.outline = "1px solid red";
            section.dataset.old = "1";
            htmx.trigger(document.body, "wallet-changed");
        }""")
        expect(page.locator("[aria-label=Balances]:not([data-old])")).to_have_count(1)
        time.sleep(0.3)  # the settle step runs after the swap
        assert violations == []
    finally:
        context.close()
