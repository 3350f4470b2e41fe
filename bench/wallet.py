"""The wallet path as a person sees it: Send clicked in one browser, the other browser's
balance showing the payment, live (Socket.IO event, htmx refresh; no reload).

The whole stack of the end-to-end tests (tests/fullstack.py: anvil, nats-server, node,
oracle, `connext web` on its default server or CONNEXT_WEB_SERVER's) and Chromium driven
by Playwright, two browser contexts (two people, two wallets). The payer gets test funds
from the faucet; after a warm-up payment, each payment is filled in and reviewed, then
timed from the click on "Send ..." (the payer page's click event) to the moment the
recipient's page shows the new balance (a MutationObserver in that page), both read from
the pages' clocks (Date.now(), one system clock, 1 ms resolution). Kept too: when the
payer's page showed "completed", when the recipient's page got the live event, how long
htmx then waited before asking for the balances and how long that request took.
It reports; it never asserts a figure.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections import Counter
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from tests.fullstack import FullStack

from .report import percentile

PAYMENTS = 50
AMOUNT_WEI = 10**16
"""0.01 ETH per payment: the faucet's 1 ETH covers the warm-up and 50 more."""
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
"""As tests/e2e/conftest.py: Debian's Chromium (Playwright cannot download browsers here)."""
SLOW_MS = 30_000
RECEIVED = "transfer.received"
"""The live event that tells the recipient's page a payment arrived."""

# In every page of both people: when a "Send ..." button is clicked, when the payer's page
# shows the payment completed, when each balance text first appeared, when each live event
# arrived and when htmx asked for the balances and had them (sessionStorage: it outlives a
# navigation, should one happen).
WATCH = """
(() => {
  const load = (key, empty) => JSON.parse(sessionStorage.getItem(key) || empty);
  const note = (records) => {
    for (const record of records) {  // wallet.js marks each live event it gets on <body>
      if (record.attributeName === "data-last-event" && record.target === document.body) {
        const events = load("bench.events", "[]");
        events.push([document.body.dataset.lastEvent, Date.now()]);
        sessionStorage.setItem("bench.events", JSON.stringify(events));
      }
    }
    const balance = document.querySelector('[data-testid="balance-ETH"]');
    if (balance) {
      const seen = load("bench.balances", "{}"), text = balance.textContent.trim();
      if (!(text in seen)) {
        seen[text] = Date.now();
        sessionStorage.setItem("bench.balances", JSON.stringify(seen));
      }
    }
    if (document.querySelector('[data-testid="send-result"][data-status="completed"]') &&
        !sessionStorage.getItem("bench.completedAt")) {
      sessionStorage.setItem("bench.completedAt", String(Date.now()));
    }
  };
  // the requests htmx makes for the balances: when each started and ended
  const request = (phase) => (event) => {
    const detail = event.detail || {};
    const path = (detail.pathInfo && detail.pathInfo.requestPath) ||
                 (detail.requestConfig && detail.requestConfig.path) || "";
    if (!path.includes("balances")) return;
    const requests = load("bench.requests", "[]");
    requests.push([phase, Date.now()]);
    sessionStorage.setItem("bench.requests", JSON.stringify(requests));
  };
  document.addEventListener("htmx:beforeRequest", request("start"), true);
  document.addEventListener("htmx:afterRequest", request("end"), true);
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("button");
    if (button && /^Send /.test(button.textContent.trim())) {
      sessionStorage.setItem("bench.clickedAt", String(Date.now()));
      sessionStorage.removeItem("bench.completedAt");
    }
  }, true);
  new MutationObserver(note).observe(document, {subtree: true, childList: true,
                                                characterData: true, attributes: true});
})();
"""


def unavailable_reason() -> str | None:
    """Why the wallet path cannot be measured here, or None."""
    if os.path.exists(CHROMIUM):
        return None
    try:
        with sync_playwright() as p:
            bundled = p.chromium.executable_path
    except Exception as exc:
        return f"no Chromium at {CHROMIUM} and Playwright's own failed: {exc}"
    if bundled and os.path.exists(bundled):
        return None
    return f"no Chromium: install Debian's chromium ({CHROMIUM}) or `playwright install chromium`"


def measure_wallet(payments: int = PAYMENTS) -> dict[str, Any]:
    skipped = unavailable_reason()
    if skipped is not None:
        return {"skipped": skipped}
    started = time.perf_counter()
    with FullStack() as stack, sync_playwright() as playwright:
        launch: dict[str, Any] = {"args": CHROMIUM_ARGS}
        if os.path.exists(CHROMIUM):
            launch["executable_path"] = CHROMIUM
        browser = playwright.chromium.launch(**launch)
        try:
            payer, recipient = (_person(browser.new_context(base_url=stack.web_url))
                                for _ in range(2))
            setup_seconds = time.perf_counter() - started
            return {"web_server": os.environ.get("CONNEXT_WEB_SERVER") or "werkzeug",
                    **_pay(payer, recipient, payments, setup_seconds)}
        finally:
            browser.close()


def _person(context: BrowserContext) -> Page:
    context.add_init_script(WATCH)
    page = context.new_page()
    page.goto("/")
    expect(page.get_by_test_id("balance-ETH")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "on", timeout=SLOW_MS)
    return page


def _pay(payer: Page, recipient: Page, payments: int, setup_seconds: float
         ) -> dict[str, Any]:
    payer.goto("/deposit")
    payer.get_by_label("Asset").select_option(label="ETH")
    payer.get_by_role("button", name="Get test funds").click()
    expect(payer.get_by_test_id("balance-ETH")).to_have_text("1", timeout=SLOW_MS)
    to = recipient.locator("body").get_attribute("data-address") or ""
    recipient.evaluate("window.__sameDocument = true")
    timings = [_timed_payment(payer, recipient, to, _eth(AMOUNT_WEI * (index + 1)))
               for index in range(payments + 1)][1:]  # the first is the warm-up

    def series(key: str) -> list[float]:
        return [value for t in timings if (value := t[key]) is not None]

    seen, event, completed = series("sees"), series("event"), series("completed")
    same_document = recipient.evaluate("window.__sameDocument === true")
    events = _page_log(recipient, "bench.events") or []
    event_names = Counter(name for name, _at in events)
    return {
        "payments": payments,
        "setup_seconds": round(setup_seconds, 1),
        "recipient_sees_p50_ms": _median(seen),
        "recipient_sees_p90_ms": round(percentile(seen, 0.9), 1),
        "recipient_sees_max_ms": round(max(seen), 1),
        "recipient_event_p50_ms": _median(event),
        "recipient_event_p90_ms": round(percentile(event, 0.9), 1) if event else None,
        "recipient_events_seen": len(event),
        "recipient_refresh_wait_p50_ms": _median(series("refresh_wait")),
        "recipient_balances_request_p50_ms": _median(series("request")),
        "recipient_balances_requests_seen": len(series("request")),
        "payer_sees_completed_p50_ms": _median(completed),
        "payer_sees_completed_p90_ms": round(percentile(completed, 0.9), 1),
        "recipient_page_never_reloaded": same_document,
        # what the recipient's page was told per payment (the warm-up and faucet included)
        "recipient_live_events_per_payment": {
            name: round(count / (payments + 1), 2) for name, count in event_names.items()},
        "recipient_sees_ms": seen,
    }


def _timed_payment(payer: Page, recipient: Page, to: str, expected: str
                   ) -> dict[str, float | None]:
    """One payment; how long after the click on Send (ms) the recipient's page showed
    `expected` as its balance and got the live event, how long htmx then waited to ask
    for the balances and how long that took, and when the payer's page said completed."""
    _send(payer, to)
    recipient.wait_for_function(
        "t => t in JSON.parse(sessionStorage.getItem('bench.balances') || '{}')",
        arg=expected, timeout=SLOW_MS)
    clicked = int(payer.evaluate("sessionStorage.getItem('bench.clickedAt')"))
    completed = int(payer.evaluate("sessionStorage.getItem('bench.completedAt')"))
    shown = _page_log(recipient, "bench.balances")[expected]
    received = next((at for name, at in _page_log(recipient, "bench.events") or []
                     if name == RECEIVED and at >= clicked), None)
    requests = _page_log(recipient, "bench.requests") or []
    start = None if received is None else next(
        (at for phase, at in requests if phase == "start" and at >= received), None)
    end = None if start is None else next(
        (at for phase, at in requests if phase == "end" and at >= start), None)
    return {
        "sees": float(shown - clicked),
        "completed": float(completed - clicked),
        "event": None if received is None else float(received - clicked),
        "refresh_wait": None if received is None or start is None else float(start - received),
        "request": None if start is None or end is None else float(end - start),
    }


def _page_log(page: Page, key: str) -> Any:
    """What WATCH wrote under `key` in the page's sessionStorage (None if nothing)."""
    return page.evaluate("key => JSON.parse(sessionStorage.getItem(key))", key)


def _send(payer: Page, to: str) -> None:
    """Fill in and review a payment (not timed), then click Send and wait until the
    payer's page says it completed."""
    amount = _eth(AMOUNT_WEI)
    payer.goto("/send")
    payer.get_by_label("Recipient").fill(to)
    payer.get_by_label("Amount").fill(amount)
    payer.get_by_label("Asset").select_option(label="ETH")
    payer.get_by_role("button", name="Review").click()
    expect(payer.get_by_test_id("review-amount")).to_have_text(f"{amount} ETH")
    payer.get_by_role("button", name=re.compile(r"^Send ")).click()
    expect(payer.get_by_test_id("send-result")).to_have_attribute(
        "data-status", "completed", timeout=SLOW_MS)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _eth(wei: int) -> str:
    """Wei as the wallet shows ETH: "0.25", "1" (no trailing zeros)."""
    whole, fraction = divmod(wei, 10**18)
    digits = f"{fraction:018d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


if __name__ == "__main__":
    import json

    print(json.dumps(measure_wallet(), indent=2))
