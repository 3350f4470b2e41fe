"""The node stops answering and the user takes the money out from the channel inspector.

This module runs its own stack: it moves the chain's clock by a day.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from eth_account import Account
from playwright.sync_api import Browser, Page, expect
from web3 import Web3

from connext.chain.channel import ChannelContract
from connext.chain.contracts import Sender
from connext.store import ChannelStore
from tests.fullstack import FullStack

from .test_wallet import ETHER, SLOW, address_of, faucet, send

DAY = 86_400


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullStack]:
    with FullStack(tmp_path_factory.mktemp("force-close-stack")) as running:
        yield running


def test_force_close_and_exit_from_the_inspector_without_the_node(
        browser: Browser, own_stack: FullStack,
        screenshot: Callable[[Page, str], None]) -> None:
    context = browser.new_context(base_url=own_stack.web_url)
    other = browser.new_context(base_url=own_stack.web_url)
    try:
        page, friend = context.new_page(), other.new_page()
        for p in (page, friend):
            p.goto("/")
            expect(p.get_by_test_id("balance-ETH")).to_be_visible()
        faucet(page)
        send(page, address_of(friend), "0.25")
        expect(friend.get_by_test_id("balance-ETH")).to_have_text("0.25", timeout=SLOW)

        page.goto("/channel")
        leave = page.get_by_test_id("leave")
        leave.get_by_role("button", name="Force close").click()  # not confirmed yet
        expect(page.locator("#confirm-error")).to_contain_text("Tick the box")
        screenshot(page, "inspector-leave")

        assert own_stack.node is not None
        own_stack.node.stop()  # the node stops answering, and the wallet server restarts:
        own_stack.restart_web()  # the wallet opens from its own copy of the channel
        page.goto("/channel")
        expect(page.get_by_test_id("nonce")).to_be_visible()
        leave = page.get_by_test_id("leave")
        leave.get_by_label("I understand").check()
        leave.get_by_role("button", name="Force close").click()
        expect(page.get_by_test_id("disputed")).to_contain_text("nonce", timeout=SLOW)
        expect(page.get_by_test_id("dispute-status")).to_contain_text("after")
        nonce = int(page.get_by_test_id("nonce").text_content() or "")
        assert f"nonce {nonce}" in (page.get_by_test_id("disputed").text_content() or "")
        page.goto("/")
        expect(page.get_by_test_id("channel-status")).to_contain_text("closing on chain")
        # the wallet's watchtower sees the dispute on chain; the activity shows it live
        expect(page.locator("#activity")).to_contain_text("Channel disputed on chain",
                                                          timeout=SLOW)
        page.goto("/send")  # the channel takes no more payments
        page.get_by_label("Recipient").fill(address_of(friend))
        page.get_by_label("Amount").fill("0.1")
        page.get_by_role("button", name="Review").click()
        page.get_by_role("button", name=re.compile(r"^Send ")).click()
        expect(page.locator("body")).to_contain_text("being closed on chain")

        own_stack.anvil.increase_time(DAY + 60)  # the dispute window ends
        own_stack.anvil.mine()
        page.goto("/channel")
        expect(page.get_by_test_id("dispute-status")).to_contain_text("take your funds out")
        cold = Account.create().address
        page.get_by_label("Send to address").fill("0x1234")
        page.get_by_role("button", name="Exit").click()
        expect(page.locator("#to-error")).to_contain_text("not an Ethereum address")
        page.get_by_label("Send to address").fill(cold)
        page.get_by_role("button", name="Exit").click()
        expect(page.get_by_test_id("exited")).to_contain_text("Sent 0.75 ETH", timeout=SLOW)
        screenshot(page, "inspector-exited")
        w3 = Web3(Web3.HTTPProvider(own_stack.chain_url))
        assert w3.eth.get_balance(cold) == ETHER * 3 // 4
        page.get_by_role("button", name="Exit").click()  # nothing is paid twice
        expect(page.get_by_test_id("exited")).to_contain_text("Nothing more to send")
        assert w3.eth.get_balance(cold) == ETHER * 3 // 4
    finally:
        context.close()
        other.close()


def test_the_wallet_answers_a_stale_dispute_by_a_node_gone_bad(
        browser: Browser, own_stack: FullStack) -> None:
    assert own_stack.node is not None and own_stack.deployment is not None
    if not own_stack.node.running:
        own_stack.node.start()
    context = browser.new_context(base_url=own_stack.web_url)
    other = browser.new_context(base_url=own_stack.web_url)
    try:
        payer, payee = context.new_page(), other.new_page()
        for p in (payer, payee):
            p.goto("/")
            expect(p.get_by_test_id("balance-ETH")).to_be_visible()
        faucet(payer)
        send(payer, address_of(payee), "0.1")  # the node collateralizes the payee's channel
        expect(payee.get_by_test_id("balance-ETH")).to_have_text("0.1", timeout=SLOW)
        store = ChannelStore.open(
            f"sqlite:///{own_stack.root / 'web' / 'channels' / (address_of(payee) + '.sqlite')}")
        try:
            (state,) = store.list_channels()
            old = store.get_channel(state.channel_address)
        finally:
            store.close()
        assert old is not None
        send(payer, address_of(payee), "0.3")
        expect(payee.get_by_test_id("balance-ETH")).to_have_text("0.4", timeout=SLOW)
        payee.goto("/channel")
        latest = int(payee.get_by_test_id("nonce").text_content() or "")

        # the node disputes the state from before the second payment, and goes away
        own_stack.node.stop()
        w3 = Web3(Web3.HTTPProvider(own_stack.chain_url))
        channel = ChannelContract(w3, old.state.channel_address, old.state.alice,
                                  old.state.bob)
        update = old.latest_update
        assert update.alice_signature is not None and update.bob_signature is not None
        Sender(w3, own_stack.anvil.private_keys[1]).transact(channel.dispute_channel(
            old.state, update.alice_signature, update.bob_signature))
        assert channel.channel_dispute().nonce == old.state.nonce < latest

        payee.goto("/")  # the wallet watches the chain for the payee, and answers
        expect(payee.locator("#activity")).to_contain_text(
            "Old state disputed by the node: answered", timeout=SLOW)
        assert channel.channel_dispute().nonce == latest
        payee.goto("/channel")
        expect(payee.get_by_test_id("dispute-status")).to_contain_text(f"nonce {latest}")
    finally:
        context.close()
        other.close()
