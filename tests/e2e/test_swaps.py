"""Swaps in the wallet, live in Chromium against the real stack (its node swaps TEST and
ETH at the local stack's rates): one wallet pays in TEST and the other receives ETH without
a reload, the review showing the quote and its expiry; then a cash out in TEST delivers ETH
on chain."""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

from eth_account import Account
from playwright.sync_api import Page, expect
from web3 import Web3

from connext.protocol.swaps import amount_out_for, base_rate
from tests.fullstack import FullStack

from .test_wallet import SLOW, address_of, faucet

ETHER = 10**18
TEST_TO_ETH = Fraction("0.01")  # the local stack's rate (connext/devstack.py LOCAL_SWAPS)
FEE_BPS = 30


def eth_text(wei: int) -> str:
    whole, frac = divmod(wei, ETHER)
    digits = f"{frac:018d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def test_paying_in_test_delivers_eth_live_and_cash_out_delivers_eth_on_chain(
        people: Callable[[], Page], stack: FullStack,
        screenshot: Callable[[Page, str], None]) -> None:
    out, fee = amount_out_for(ETHER, base_rate(TEST_TO_ETH, 18, 18), fee_bps=FEE_BPS)
    alice, bob = people(), people()
    faucet(alice, "TEST", "100")
    bob.evaluate("window.__sameDocument = true")
    expect(bob.get_by_test_id("balance-TEST")).to_have_text("0")  # every asset shows

    alice.goto("/send")
    alice.get_by_label("Recipient").fill(address_of(bob))
    alice.get_by_label("Amount").fill("1")
    alice.get_by_label("Asset").select_option(label="TEST")
    alice.get_by_label("Deliver as").select_option(label="ETH")
    alice.get_by_role("button", name="Review").click()
    expect(alice.get_by_test_id("review-amount")).to_have_text("1 TEST")
    expect(alice.get_by_test_id("review-deliver")).to_have_text(f"{eth_text(out)} ETH")
    expect(alice.get_by_test_id("review-fee")).to_contain_text(f"{eth_text(fee)} ETH")
    expect(alice.get_by_test_id("review-expiry")).to_contain_text(
        re.compile(r"until \d\d:\d\d:\d\d UTC · \d+ s left"))
    screenshot(alice, "send-swap-review")
    alice.get_by_role("button", name=re.compile(r"^Send ")).click()
    expect(alice.get_by_test_id("send-result")).to_have_attribute("data-status", "completed",
                                                                  timeout=SLOW)
    expect(alice.get_by_test_id("result-deliver")).to_have_text(f"{eth_text(out)} ETH")

    # bob's open home page shows the ETH arrive, no reload
    expect(bob.get_by_test_id("balance-ETH")).to_have_text(eth_text(out), timeout=SLOW)
    expect(bob.get_by_test_id("balance-TEST")).to_have_text("0")
    assert bob.evaluate("window.__sameDocument") is True
    alice.goto("/")
    expect(alice.get_by_test_id("balance-TEST")).to_have_text("99")

    # alice cashes out 2 TEST as ETH: swapped in her channel, then paid out on chain
    external = Account.create().address
    cash_out, _ = amount_out_for(2 * ETHER, base_rate(TEST_TO_ETH, 18, 18), fee_bps=FEE_BPS)
    alice.goto("/withdraw")
    alice.get_by_label("To address").fill(external)
    alice.get_by_label("Amount").fill("2")
    alice.get_by_label("Asset").select_option(label="TEST")
    alice.get_by_label("Receive as").select_option(label="ETH")
    alice.get_by_role("button", name="Cash out").click()
    result = alice.get_by_test_id("withdraw-result")
    expect(result).to_have_attribute("data-status", "confirmed", timeout=SLOW)
    expect(alice.get_by_test_id("withdraw-swap")).to_contain_text(f"{eth_text(cash_out)} ETH")
    w3 = Web3(Web3.HTTPProvider(stack.chain_url))
    assert w3.eth.get_balance(external) == cash_out
    expect(alice.get_by_test_id("balance-TEST")).to_have_text("97")
    expect(alice.get_by_test_id("balance-ETH")).to_have_text("0")


def test_the_demo_page_shows_a_swap_on_its_way_between_its_two_wallets(
        people: Callable[[], Page], screenshot: Callable[[Page, str], None]) -> None:
    out, fee = amount_out_for(ETHER, base_rate(TEST_TO_ETH, 18, 18), fee_bps=FEE_BPS)
    page = people()
    page.goto("/demo")
    shop = page.get_by_test_id("demo-0")
    shop.get_by_label("Asset").first.select_option(label="TEST")
    shop.get_by_role("button", name="Faucet").click()
    expect(page.get_by_test_id("demo-0-balance-TEST")).to_have_text("100", timeout=SLOW)
    shop = page.get_by_test_id("demo-0")
    shop.get_by_label("Pay Bob").fill("1")
    shop.locator("select[name=asset]").last.select_option(label="TEST")
    shop.get_by_label("Bob gets").select_option("ETH")
    shop.get_by_role("button", name="Pay").click()
    expect(page.get_by_test_id("demo-1-balance-ETH")).to_have_text(eth_text(out), timeout=SLOW)
    expect(page.get_by_test_id("demo-0-balance-TEST")).to_have_text("99")
    expect(page.get_by_test_id("demo-0")).to_contain_text(
        f"Bob got {eth_text(out)} ETH (swapped by the node at its quote, fee {eth_text(fee)} ETH)")
    screenshot(page, "demo-swap")
