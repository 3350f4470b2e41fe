"""The wallet as people use it: Chromium against the real stack (anvil, nats-server, node,
`connext web`), one browser context per person. Every wallet here is new, so tests do not
depend on each other."""

from __future__ import annotations

import re
from collections.abc import Callable

from eth_account import Account
from playwright.sync_api import Page, expect
from web3 import Web3

from tests.fullstack import FullStack

ETHER = 10**18
SLOW = 30_000  # ms: an on-chain step on anvil takes well under this


def address_of(page: Page) -> str:
    value = page.locator("body").get_attribute("data-address")
    assert value and value.startswith("0x")
    return value


def faucet(page: Page, symbol: str = "ETH", expected: str = "1") -> None:
    page.goto("/deposit")
    page.get_by_label("Asset").select_option(label=symbol)
    page.get_by_role("button", name="Get test funds").click()
    expect(page.get_by_test_id(f"balance-{symbol}")).to_have_text(expected, timeout=SLOW)


def send(page: Page, to: str, amount: str, symbol: str = "ETH") -> None:
    page.goto("/send")
    page.get_by_label("Recipient").fill(to)
    page.get_by_label("Amount").fill(amount)
    page.get_by_label("Asset").select_option(label=symbol)
    page.get_by_role("button", name="Review").click()
    expect(page.get_by_test_id("review-amount")).to_have_text(f"{amount} {symbol}")
    page.get_by_role("button", name=re.compile(r"^Send ")).click()
    expect(page.get_by_test_id("send-result")).to_have_attribute("data-status", "completed",
                                                                 timeout=SLOW)


def nonce(page: Page) -> int:
    page.goto("/channel")
    return int(page.get_by_test_id("nonce").text_content() or "")


def test_a_newcomers_first_five_minutes(people: Callable[[], Page], stack: FullStack,
                                        screenshot: Callable[[Page, str], None]) -> None:
    alice = people()
    screenshot(alice, "home-new-wallet")
    faucet(alice)
    screenshot(alice, "deposit")
    bob = people()
    assert address_of(bob) != address_of(alice)

    # bob keeps his home page open: the payment must appear without a reload
    bob.evaluate("window.__sameDocument = true")
    send(alice, address_of(bob), "0.25")
    screenshot(alice, "send-result")
    expect(bob.get_by_test_id("balance-ETH")).to_have_text("0.25", timeout=SLOW)
    assert bob.evaluate("window.__sameDocument") is True  # no navigation happened
    expect(bob.locator("#activity")).to_contain_text("Received", timeout=SLOW)
    expect(bob.locator("#toasts")).to_contain_text("Payment received")
    alice.goto("/")
    expect(alice.get_by_test_id("balance-ETH")).to_have_text("0.75")
    # one line per payment: its outcome, not the "Sending" it was a moment ago
    expect(alice.locator("#activity li").first).to_contain_text("Sent")
    expect(alice.locator("#activity li").first).to_contain_text("0.25 ETH")
    expect(alice.locator("#activity")).not_to_contain_text("Sending")

    # bob cashes out to a fresh external address; the node pays the gas
    external = Account.create().address
    bob.goto("/withdraw")
    bob.get_by_label("To address").fill(external)
    bob.get_by_label("Amount").fill("0.1")
    bob.get_by_role("button", name="Cash out").click()
    result = bob.get_by_test_id("withdraw-result")
    expect(result).to_have_attribute("data-status", "confirmed", timeout=SLOW)
    screenshot(bob, "withdraw-confirmed")
    tx = bob.get_by_test_id("withdraw-tx").text_content()
    w3 = Web3(Web3.HTTPProvider(stack.chain_url))
    receipt = w3.eth.get_transaction_receipt(tx)
    assert receipt["status"] == 1
    assert w3.eth.get_balance(external) == ETHER // 10
    expect(bob.get_by_test_id("balance-ETH")).to_have_text("0.15")


def test_a_request_link_prefills_send_and_the_requester_sees_the_payment(
        people: Callable[[], Page], screenshot: Callable[[Page, str], None]) -> None:
    payer, requester = people(), people()
    faucet(payer)
    requester.goto("/request")
    requester.get_by_label("Amount").fill("0.3")
    requester.get_by_label("Asset").select_option(label="ETH")
    requester.get_by_role("button", name="Create request link").click()
    link = requester.get_by_test_id("request-link").text_content() or ""
    assert f"to={address_of(requester)}" in link
    screenshot(requester, "request")

    payer.goto(link)
    expect(payer.get_by_label("Recipient")).to_have_value(address_of(requester))
    expect(payer.get_by_label("Amount")).to_have_value("0.3")
    expect(payer.get_by_label("Asset")).to_have_value("ETH")
    screenshot(payer, "send-prefilled")
    payer.get_by_role("button", name="Review").click()
    screenshot(payer, "send-review")
    payer.get_by_role("button", name=re.compile(r"^Send ")).click()
    expect(payer.get_by_test_id("send-result")).to_have_attribute("data-status", "completed",
                                                                  timeout=SLOW)
    # the requester's page (still the request screen) shows it live
    expect(requester.get_by_test_id("balance-ETH")).to_have_text("0.3", timeout=SLOW)
    expect(requester.locator("#activity")).to_contain_text("Received")


def test_a_link_payment_is_claimed_once_and_a_cancelled_link_refunds(
        people: Callable[[], Page], screenshot: Callable[[Page, str], None]) -> None:
    alice, bob, carol = people(), people(), people()
    faucet(alice)
    alice.goto("/links")
    alice.get_by_label("Amount").fill("0.2")
    alice.get_by_role("button", name="Create link").click()
    url = alice.get_by_test_id("link-url").text_content() or ""
    assert "/redeem#" in url
    expect(alice.get_by_test_id("balance-ETH")).to_have_text("0.8")
    screenshot(alice, "links")

    bob.goto(url)
    expect(bob.get_by_label("Payment link")).not_to_have_value("")
    screenshot(bob, "redeem")
    bob.get_by_role("button", name="Claim into my wallet").click()
    expect(bob.get_by_test_id("redeem-result")).to_have_attribute("data-status", "completed",
                                                                  timeout=SLOW)
    bob.goto("/")
    expect(bob.get_by_test_id("balance-ETH")).to_have_text("0.2", timeout=SLOW)

    carol.goto(url)
    carol.get_by_role("button", name="Claim into my wallet").click()
    expect(carol.locator("#code-error")).to_have_text("This link was already claimed.",
                                                      timeout=SLOW)
    carol.goto("/")
    expect(carol.get_by_test_id("balance-ETH")).to_have_text("0")
    alice.goto("/links")
    first = url.split("#", 1)[1].split(".", 1)[0]
    expect(alice.locator(f'li[data-routing="{first}"]')).to_have_attribute("data-status",
                                                                          "claimed")

    # a second link, cancelled before anyone claims it, refunds alice
    alice.goto("/links")
    alice.get_by_label("Amount").fill("0.3")
    alice.get_by_role("button", name="Create link").click()
    second = alice.get_by_test_id("link-url").text_content() or ""
    expect(alice.get_by_test_id("balance-ETH")).to_have_text("0.5")
    routing = second.split("#", 1)[1].split(".", 1)[0]
    alice.locator(f'li[data-routing="{routing}"]').get_by_role(
        "button", name="Cancel and refund").click()
    expect(alice.locator("main p.note")).to_contain_text("Link cancelled", timeout=SLOW)
    expect(alice.get_by_test_id("balance-ETH")).to_have_text("0.8", timeout=SLOW)
    carol.goto(second)
    carol.get_by_role("button", name="Claim into my wallet").click()
    expect(carol.locator("#code-error")).to_have_text(
        "This link was cancelled by its creator.", timeout=SLOW)


def test_restoring_from_the_phrase_brings_back_balance_and_history(
        people: Callable[[], Page], screenshot: Callable[[Page, str], None]) -> None:
    alice, bob = people(), people()
    faucet(alice)
    send(alice, address_of(bob), "0.4")
    alice.goto("/settings")
    alice.get_by_role("button", name="Show backup phrase").click()
    expect(alice.get_by_role("alert")).to_contain_text("Tick the box")  # needs confirming
    alice.get_by_label("Nobody is watching my screen").check()
    alice.get_by_role("button", name="Show backup phrase").click()
    phrase = alice.get_by_test_id("phrase").text_content() or ""
    assert len(phrase.split()) == 12
    screenshot(alice, "settings")

    fresh = people()
    assert address_of(fresh) != address_of(alice)
    fresh.goto("/settings")
    fresh.get_by_label("Backup phrase", exact=True).fill(phrase)
    fresh.get_by_role("button", name="Restore").click()
    expect(fresh.get_by_test_id("balance-ETH")).to_have_text("0.6", timeout=SLOW)
    assert address_of(fresh) == address_of(alice)
    alice.goto("/activity")
    fresh.goto("/activity")
    mine = alice.locator("#activity li").all_text_contents()
    assert mine and fresh.locator("#activity li").all_text_contents() == mine


def test_invalid_input_on_every_form_gets_a_message_and_moves_nothing(
        people: Callable[[], Page], screenshot: Callable[[Page, str], None]) -> None:
    alice, bob = people(), people()
    faucet(alice)
    before = nonce(alice)
    cases = [
        ("not-an-address", "0.1", "to-error", "not an Ethereum address"),
        ("0x" + "12" * 19, "0.1", "to-error", "not an Ethereum address"),
        (address_of(alice), "0.1", "to-error", "your own address"),
        (address_of(bob), "", "amount-error", "Enter an amount"),
        (address_of(bob), "0", "amount-error", "more than zero"),
        (address_of(bob), "-1", "amount-error", "more than zero"),
        (address_of(bob), "abc", "amount-error", "as a number"),
        (address_of(bob), "0.0000000000000000001", "amount-error", "at most 18 decimals"),
        (address_of(bob), "5", "amount-error", "more than your balance (1 ETH)"),
    ]
    for to, amount, error_id, message in cases:
        alice.goto("/send")
        alice.get_by_label("Recipient").fill(to)
        alice.get_by_label("Amount").fill(amount)
        alice.get_by_role("button", name="Review").click()
        expect(alice.locator(f"#{error_id}")).to_contain_text(message)
        # the form keeps what was typed
        expect(alice.get_by_label("Amount")).to_have_value(amount)
    screenshot(alice, "send-invalid")

    alice.goto("/withdraw")
    alice.get_by_label("To address").fill("0x1234")
    alice.get_by_label("Amount").fill("0.1")
    alice.get_by_role("button", name="Cash out").click()
    expect(alice.locator("#to-error")).to_contain_text("not an Ethereum address")
    alice.get_by_label("To address").fill(Account.create().address)
    alice.get_by_label("Amount").fill("2")
    alice.get_by_role("button", name="Cash out").click()
    expect(alice.locator("#amount-error")).to_contain_text("more than your balance")

    alice.goto("/request")
    alice.get_by_label("Amount").fill("0")
    alice.get_by_role("button", name="Create request link").click()
    expect(alice.locator("#amount-error")).to_contain_text("more than zero")

    alice.goto("/links")
    alice.get_by_label("Amount").fill("3")
    alice.get_by_role("button", name="Create link").click()
    expect(alice.locator("#amount-error")).to_contain_text("more than your balance")

    bob.goto("/redeem")
    bob.get_by_label("Payment link").fill("http://localhost:3000/redeem#0x1234.zz")
    bob.get_by_role("button", name="Claim into my wallet").click()
    expect(bob.locator("#code-error")).to_have_text("This is not a valid payment link.")

    bob.goto("/settings")
    bob.get_by_label("Backup phrase", exact=True).fill("these are not twelve valid words at all")
    bob.get_by_role("button", name="Restore").click()
    expect(bob.locator("#phrase-error")).to_contain_text("not a valid backup phrase")

    bob.get_by_role("button", name="Start a new wallet").click()
    expect(bob.locator("#new-error")).to_contain_text("Tick the box")
    expect(bob.locator("body")).to_have_attribute("data-address", address_of(bob))

    bob.goto("/demo")
    panel = bob.get_by_test_id("demo-0")
    for amount, message in [("", "Enter an amount"), ("-2", "more than zero"),
                            ("1", "more than your balance")]:
        panel.get_by_label("Pay Bob").fill(amount)
        panel.get_by_role("button", name="Pay").click()
        expect(panel.get_by_role("alert")).to_contain_text(message)
        panel = bob.get_by_test_id("demo-0")

    bob.goto("/deposit")
    bob.evaluate("document.querySelector('#faucet-asset option').value = 'DOGE'")
    bob.get_by_role("button", name="Get test funds").click()
    expect(bob.locator("#asset-error")).to_contain_text("Choose one of the listed assets")

    # nothing moved: same nonce, same balances
    assert nonce(alice) == before
    alice.goto("/")
    expect(alice.get_by_test_id("balance-ETH")).to_have_text("1")
    expect(bob.get_by_test_id("balance-ETH")).to_have_text("0")


def test_the_channel_inspector_shows_the_nonce_rising_after_a_payment(
        people: Callable[[], Page], screenshot: Callable[[Page, str], None]) -> None:
    alice, bob = people(), people()
    faucet(alice)
    start = nonce(alice)
    screenshot(alice, "channel-inspector")
    signatures = alice.locator("dl.kv dd.mono.small").all_text_contents()
    assert all(re.fullmatch(r"0x[0-9a-f]{130}", s.strip()) for s in signatures), signatures
    send(alice, address_of(bob), "0.01")
    assert nonce(alice) >= start + 2  # create + resolve
    expect(alice.get_by_test_id("onchain")).to_contain_text("holds 1 ETH")


def test_the_demo_page_pays_between_two_wallets_live(
        people: Callable[[], Page], screenshot: Callable[[Page, str], None]) -> None:
    page = people()
    page.goto("/demo")
    left, right = page.get_by_test_id("demo-0"), page.get_by_test_id("demo-1")
    left.get_by_role("button", name="Faucet").click()
    expect(page.get_by_test_id("demo-0-balance-ETH")).to_have_text("1", timeout=SLOW)
    page.get_by_test_id("demo-0").get_by_label("Pay Bob").fill("0.125")
    page.get_by_test_id("demo-0").get_by_role("button", name="Pay").click()
    expect(page.get_by_test_id("demo-1-balance-ETH")).to_have_text("0.125", timeout=SLOW)
    expect(page.get_by_test_id("demo-0-balance-ETH")).to_have_text("0.875")
    assert right.is_visible()
    screenshot(page, "demo")


def test_every_screen_renders_on_desktop_and_phone(
        people: Callable[[], Page], screenshot: Callable[[Page, str], None]) -> None:
    page = people()
    for path, name in [("/", "home"), ("/deposit", "deposit-empty"), ("/send", "send"),
                       ("/request", "request-form"), ("/links", "links-empty"),
                       ("/withdraw", "withdraw"), ("/activity", "activity"),
                       ("/channel", "channel"), ("/settings", "settings-start"),
                       ("/redeem", "redeem-form"), ("/demo", "demo-empty")]:
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator(".banner.error")).to_have_count(0)
        screenshot(page, name)
    # phone width: nothing overflows sideways
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/send")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390


def tab_to(page: Page, selector: str, presses: int = 6) -> None:
    """Press Tab until `selector` has the focus (fails if it is not reachable)."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"{selector} is not reachable with the Tab key")


def test_the_send_form_works_from_the_keyboard_alone(people: Callable[[], Page]) -> None:
    alice, bob = people(), people()
    faucet(alice)
    alice.goto("/send")
    alice.get_by_label("Recipient").focus()
    alice.keyboard.type(address_of(bob))
    tab_to(alice, "#amount")
    alice.keyboard.type("0.05")
    tab_to(alice, "#asset")
    alice.keyboard.press("End")  # the last asset...
    alice.keyboard.press("Home")  # ...and back to the first (ETH)
    tab_to(alice, "button[type=submit]")
    alice.keyboard.press("Enter")
    expect(alice.get_by_test_id("review-amount")).to_have_text("0.05 ETH")
    tab_to(alice, "button[type=submit]", presses=30)
    alice.keyboard.press("Enter")
    expect(alice.get_by_test_id("send-result")).to_have_attribute("data-status", "completed",
                                                                  timeout=SLOW)
    expect(bob.get_by_test_id("balance-ETH")).to_have_text("0.05", timeout=SLOW)


def test_a_wallet_survives_a_restart_of_the_wallet_server(
        people: Callable[[], Page], stack: FullStack) -> None:
    alice, bob = people(), people()
    faucet(alice)
    send(alice, address_of(bob), "0.2")
    mine = address_of(alice)
    alice.goto("/activity")
    history = alice.locator("#activity li").all_text_contents()
    stack.restart_web()
    alice.goto("/")
    assert address_of(alice) == mine
    expect(alice.get_by_test_id("balance-ETH")).to_have_text("0.8", timeout=SLOW)
    alice.goto("/activity")
    assert alice.locator("#activity li").all_text_contents() == history
    # and it still pays, live, after the restart
    bob.goto("/")
    send(alice, address_of(bob), "0.3")
    expect(bob.get_by_test_id("balance-ETH")).to_have_text("0.5", timeout=SLOW)


def test_a_payment_while_the_node_is_down_fails_clearly_and_loses_nothing(
        people: Callable[[], Page], stack: FullStack) -> None:
    alice, bob = people(), people()
    faucet(alice)
    before = nonce(alice)
    assert stack.node is not None
    stack.node.stop()
    try:
        alice.goto("/send")
        alice.get_by_label("Recipient").fill(address_of(bob))
        alice.get_by_label("Amount").fill("0.1")
        alice.get_by_role("button", name="Review").click()
        alice.get_by_role("button", name=re.compile(r"^Send ")).click()
        expect(alice.locator("#form-error")).to_contain_text("nothing was lost", timeout=SLOW)
        expect(alice.get_by_label("Amount")).to_have_value("0.1")  # the form is kept
    finally:
        stack.node.start()
    assert nonce(alice) == before
    alice.goto("/")
    expect(alice.get_by_test_id("balance-ETH")).to_have_text("1")
    send(alice, address_of(bob), "0.1")  # the node is back: the same payment goes through
    expect(bob.get_by_test_id("balance-ETH")).to_have_text("0.1", timeout=SLOW)


def test_a_deposit_sent_from_another_wallet_shows_up_live(
        people: Callable[[], Page], stack: FullStack) -> None:
    from connext.chain.contracts import Sender, connect

    alice = people()
    alice.goto("/deposit")
    channel = alice.get_by_test_id("deposit-address").text_content() or ""
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", channel)
    # someone pays the channel address from an ordinary wallet: no button pressed here
    Sender(connect(stack.chain_url), stack.anvil.private_keys[2]).send_eth(channel,
                                                                           ETHER // 2)
    expect(alice.get_by_test_id("balance-ETH")).to_have_text("0.5", timeout=SLOW)
    expect(alice.locator("#toasts")).to_contain_text("Deposit confirmed")


def test_confirming_a_payment_twice_sends_it_once(people: Callable[[], Page]) -> None:
    """A double click, or a reload that posts the confirmation again, pays once: the review
    carries the payment's id."""
    alice, bob = people(), people()
    faucet(alice)
    alice.goto("/send")
    alice.get_by_label("Recipient").fill(address_of(bob))
    alice.get_by_label("Amount").fill("0.25")
    alice.get_by_role("button", name="Review").click()
    confirm = alice.locator("form:has(input[name=step][value=confirm])")
    posted = {name: confirm.locator(f"input[name={name}]").input_value()
              for name in ("csrf_token", "step", "to", "amount", "asset", "payment_id")}
    assert len(posted["payment_id"]) == 32
    for _ in range(2):
        answer = alice.request.post("/send", form=posted, timeout=SLOW)
        assert answer.ok and 'data-status="completed"' in answer.text()
    alice.goto("/")
    expect(alice.get_by_test_id("balance-ETH")).to_have_text("0.75", timeout=SLOW)
    bob.goto("/")
    expect(bob.get_by_test_id("balance-ETH")).to_have_text("0.25", timeout=SLOW)


def test_a_payment_shows_from_its_live_event_even_when_the_page_cannot_refresh(
        people: Callable[[], Page]) -> None:
    """The event of each new co-signed state carries the balances it leaves: the open page
    shows them at once, in order, for its own wallet only, with no refresh request."""
    payer, payee = people(), people()
    faucet(payer)
    # the payer's browser runs the demo too: its page gets the demo wallets' events as well
    demo = payer.context.new_page()
    demo.goto("/demo")
    demo.get_by_test_id("demo-0").get_by_role("button", name="Faucet").click()
    expect(demo.get_by_test_id("demo-0-balance-ETH")).to_have_text("1", timeout=SLOW)
    payer.goto("/")
    expect(payer.get_by_test_id("balance-ETH")).to_have_text("1")
    expect(payee.locator("body")).to_have_attribute("data-live", "on", timeout=SLOW)
    before = int(payee.get_by_test_id("nonce").text_content() or "")

    refreshes: list[str] = []
    payee.route("**/partials/**", lambda route: (refreshes.append(route.request.url),
                                                  route.abort()))
    payer.route("**/partials/**", lambda route: route.abort())
    payee.evaluate("window.__sameDocument = true")
    other = payer.context.new_page()
    for _ in range(2):
        send(other, address_of(payee), "0.15")
    for paid in ("0.1", "0.2", "0.3", "0.4", "0.5"):  # more states than the payer's own
        demo.get_by_test_id("demo-0").get_by_label("Pay Bob").fill("0.1")
        demo.get_by_test_id("demo-0").get_by_role("button", name="Pay").click()
        expect(demo.get_by_test_id("demo-1-balance-ETH")).to_have_text(paid, timeout=SLOW)

    expect(payee.get_by_test_id("balance-ETH")).to_have_text("0.3", timeout=SLOW)
    assert int(payee.get_by_test_id("nonce").text_content() or "") >= before + 4
    assert refreshes, "the page asked for a refresh (refused here) after the events"
    assert payee.evaluate("window.__sameDocument") is True
    # the payer's page took its own wallet's states, not the demo wallets' it also hears of
    expect(payer.get_by_test_id("balance-ETH")).to_have_text("0.7", timeout=SLOW)
    # and a full rendering agrees with what the events showed
    payee.unroute("**/partials/**")
    payee.goto("/")
    expect(payee.get_by_test_id("balance-ETH")).to_have_text("0.3")
