"""Streams, oracle payments and the pay-per-chunk demo in the browser, on the real stack
(anvil, nats-server, node, the demo oracle, `connext web`), plus the wallet's layout rules:
notifications never cover the page, the phone-width navigation never scrolls sideways."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from .test_wallet import SLOW, address_of, faucet

CHUNKS = 64
PRICE = "0.0001"  # ETH a chunk (app/chunks.py)


def _balance(page: Page) -> str:
    page.goto("/")
    return page.get_by_test_id("balance-ETH").text_content() or ""


def test_the_pay_per_chunk_demo_moves_chunks_times_price_between_the_wallets(
        people: Callable[[], Page], screenshot: Callable[[Page, str], None]) -> None:
    page = people()
    page.goto("/demo")
    scene = page.get_by_test_id("demo-chunks")
    buy = scene.get_by_role("button", name="Bob buys the file, chunk by chunk")
    buy.click()  # Bob has nothing yet: refused with a reason, nothing moves
    expect(scene).to_contain_text("Bob needs 0.0064 ETH")
    page.get_by_test_id("demo-1").get_by_role("button", name="Faucet").click()
    expect(page.get_by_test_id("demo-1-balance-ETH")).to_have_text("1", timeout=SLOW)

    page.get_by_test_id("demo-chunks").get_by_role(
        "button", name="Bob buys the file, chunk by chunk").click()
    expect(page.get_by_test_id("demo-chunks")).to_have_attribute("data-status", "settled",
                                                                 timeout=SLOW)
    scene = page.get_by_test_id("demo-chunks")
    expect(scene.get_by_test_id("chunks-downloaded")).to_have_text(f"{CHUNKS} / {CHUNKS}")
    expect(scene.get_by_test_id("chunks-sold")).to_have_text(str(CHUNKS))
    expect(scene.get_by_test_id("chunks-paid")).to_have_text("0.0064 ETH")
    expect(scene.get_by_test_id("chunks-received")).to_have_text("0.0064 ETH")
    expect(scene.get_by_test_id("chunks-settlement")).to_contain_text(
        "Bob -0.0064 ETH, Alice's shop +0.0064 ETH")
    expect(scene.get_by_test_id("chunks-gas")).to_contain_text(
        f"{CHUNKS} \N{MULTIPLICATION SIGN} 21,000 = 1,344,000 gas")
    # both wallets changed by exactly chunks x price
    expect(page.get_by_test_id("demo-0-balance-ETH")).to_have_text("0.0064", timeout=SLOW)
    expect(page.get_by_test_id("demo-1-balance-ETH")).to_have_text("0.9936", timeout=SLOW)
    screenshot(page, "demo-pay-per-chunk")


def test_an_oracle_payment_is_created_and_claimed_in_the_browser(
        people: Callable[[], Page], screenshot: Callable[[Page, str], None]) -> None:
    alice, bob = people(), people()
    faucet(alice)
    alice.goto("/oracle")
    alice.get_by_label("Recipient").fill(address_of(bob))
    alice.get_by_label("Amount").fill("0.25")
    alice.get_by_label("What the oracle confirms (payment id)").fill("order 42")
    oracle = alice.get_by_label("Oracle", exact=True).input_value()
    assert oracle.startswith("0x")  # the demo oracle, filled in
    alice.get_by_role("button", name="Lock the payment").click()
    expect(alice.locator(".note")).to_contain_text("paid once", timeout=SLOW)
    expect(alice.locator("#oracle-payments")).to_contain_text("order 42")
    assert _balance(alice) == "0.75"

    bob.goto("/oracle")
    card = bob.locator("#oracle-payments article").filter(has_text="order 42")
    expect(card).to_be_visible(timeout=SLOW)
    screenshot(bob, "oracle-claim")
    card.get_by_label("Outcome").fill("delivered")
    card.get_by_role("button", name="Ask the demo oracle").click()
    card = bob.locator("#oracle-payments article").filter(has_text="order 42")
    signature = card.get_by_label("Oracle's receipt (signature)")
    expect(signature).to_have_value(re.compile(r"0x[0-9a-f]{130}"))
    # the receipt is for "delivered": claiming another outcome with it is refused
    card.get_by_label("Outcome").fill("not delivered")
    card.get_by_role("button", name="Claim").click()
    card = bob.locator("#oracle-payments article").filter(has_text="order 42")
    expect(card.locator(".field-error")).to_contain_text("not the oracle's signature")
    assert _balance(bob) == "0"

    bob.goto("/oracle")
    card = bob.locator("#oracle-payments article").filter(has_text="order 42")
    card.get_by_label("Outcome").fill("delivered")
    card.get_by_role("button", name="Ask the demo oracle").click()
    card = bob.locator("#oracle-payments article").filter(has_text="order 42")
    expect(card.get_by_label("Oracle's receipt (signature)")).to_have_value(
        re.compile(r"0x[0-9a-f]{130}"))
    card.get_by_role("button", name="Claim").click()
    expect(bob.locator(".note")).to_contain_text("Claimed: 0.25 ETH received.", timeout=SLOW)
    expect(bob.locator("#oracle-payments")).to_contain_text("No oracle payment is waiting")
    assert _balance(bob) == "0.25"
    bob.goto("/activity")
    expect(bob.locator("#activity")).to_contain_text("Received on the oracle's receipt")
    alice.goto("/activity")
    expect(alice.locator("#activity")).to_contain_text("Oracle payment claimed", timeout=SLOW)


def test_a_stream_shows_live_counters_and_settles_from_the_recipients_side(
        people: Callable[[], Page], screenshot: Callable[[Page, str], None]) -> None:
    alice, bob = people(), people()
    faucet(alice)
    bob.goto("/streams")
    alice.goto("/streams")
    alice.get_by_label("Recipient").fill(address_of(bob))
    alice.get_by_label("Budget").fill("0.1")
    alice.get_by_role("button", name="Open stream").click()
    expect(alice.locator(".note")).to_contain_text("Stream open", timeout=SLOW)
    stream = alice.locator("article.stream").first
    expect(stream.get_by_test_id("stream-left")).to_have_text("0.1 ETH of 0.1 ETH")
    stream.get_by_label("Vouchers of").fill("0.0001")
    stream.get_by_label("How many").fill("300")
    stream.get_by_role("button", name="Stream").click()
    stream = alice.locator("article.stream").first
    expect(stream.get_by_test_id("stream-vouchers")).to_have_text("300", timeout=SLOW)
    expect(stream.get_by_test_id("stream-streamed")).to_have_text("0.03 ETH")
    expect(stream.get_by_test_id("stream-left")).to_have_text("0.07 ETH of 0.1 ETH")
    screenshot(alice, "streams-payer")

    # bob's screen counted the vouchers as they arrived, without a reload
    incoming = bob.locator("article.stream").first
    expect(incoming.get_by_test_id("stream-streamed")).to_have_text("0.03 ETH", timeout=SLOW)
    expect(incoming.get_by_test_id("stream-vouchers")).to_have_text("300")
    screenshot(bob, "streams-recipient")
    incoming.get_by_role("button", name="Close and settle").click()
    expect(bob.locator(".note")).to_contain_text("Stream settled: 0.03 ETH received",
                                                 timeout=SLOW)
    assert _balance(bob) == "0.03"
    assert _balance(alice) == "0.97"  # the rest of the budget came back
    alice.goto("/streams")
    expect(alice.locator("article.stream").first.get_by_test_id("stream-status")).to_have_text(
        "completed")
    alice.goto("/activity")
    expect(alice.locator("#activity")).to_contain_text("Stream settled")


def test_notifications_never_cover_the_page_and_the_phone_navigation_fits(
        people: Callable[[], Page]) -> None:
    page = people()
    page.goto("/demo")
    page.get_by_test_id("demo-0").get_by_role("button", name="Faucet").click()
    expect(page.get_by_test_id("demo-0-balance-ETH")).to_have_text("1", timeout=SLOW)
    for paid in range(1, 6):
        panel = page.get_by_test_id("demo-0")
        panel.get_by_label("Pay Bob").fill("0.01")
        panel.get_by_role("button", name="Pay").click()
        expect(page.get_by_test_id("demo-1-balance-ETH")).to_have_text(f"0.0{paid}",
                                                                        timeout=SLOW)
        # Bob's live balance can show it before Alice's panel comes back from the payment:
        # typing into the old form then is lost when the new (empty) one replaces it
        expect(panel.get_by_label("Pay Bob")).to_have_value("", timeout=SLOW)
    toasts = page.locator("#toasts .toast")
    expect(toasts.first).to_be_visible()
    assert toasts.count() <= 2
    main = page.locator("main").bounding_box()
    assert main is not None
    for index in range(toasts.count()):
        box = toasts.nth(index).bounding_box()
        assert box is not None
        assert box["y"] + box["height"] <= main["y"], "a notification covers the page"

    page.set_viewport_size({"width": 360, "height": 740})
    for path in ("/", "/demo", "/streams", "/oracle"):
        page.goto(path)
        nav = page.locator("nav.tabs")
        assert nav.evaluate("n => n.scrollWidth <= n.clientWidth"), path
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
        last = page.locator("nav.tabs a").last.bounding_box()
        assert last is not None and last["x"] + last["width"] <= 360, path
