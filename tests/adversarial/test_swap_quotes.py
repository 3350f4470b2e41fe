"""A payer (and a recipient) bend swap quotes on purpose: the payer raises the amount out of
a signed quote, pays less than the quote's amount in, asks for another asset out, replays a
quote that paid, uses another payer's quote and an expired one, all as raw creates that skip
the SDK's own checks; the recipient tries the quote it saw in its forward, and refuses a
swapped payment. Every attempt is refused before anything is locked; afterwards the
payer, the recipient and the node are paid out on chain exactly what the one honest swap
says, to the wei."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import replace
from typing import Any

import ecies
import pytest

from connext.chain.contracts import connect, contract
from connext.client import Client, PaymentResult
from connext.protocol import errors
from connext.protocol.identifiers import forward_transfer_id
from connext.protocol.serialization import hexb
from connext.protocol.signing import Signer
from connext.protocol.swaps import SwapQuote, quote_to_json
from connext.protocol.transfers import HASHLOCK, lock_hash
from connext.protocol.types import ETH
from connext.store import ChannelStore

from ..integration.conftest import ClientFactory, NodeProcess
from ..integration.test_payments import balances_are
from .kit import connect_hostile, until

ETHER = 10**18
SWAPS = [{"from": "TEST", "to": "ETH", "rate": "0.0005", "feeBps": 30}]


@pytest.fixture
def node_extra_env() -> dict[str, str]:
    return {"CONNEXT_SWAPS": json.dumps(SWAPS)}


async def raw_payment(payer: Client, recipient: str, asset: str, amount: int,
                      meta: dict[str, Any], wait: float | None = 30.0) -> PaymentResult:
    """A hashlock payment to `recipient` with whatever meta the attacker likes: the create
    the SDK would send, without its checks of the quote."""
    preimage = os.urandom(32)
    public_key = await payer._public_key_of(recipient)
    meta = {"recipient": recipient,
            "encryptedPreimage": hexb(ecies.encrypt(public_key, preimage)), **meta}
    initial = HASHLOCK.encode_state(lock_hash(preimage), int(time.time()) + 3600)
    return await payer._route(asset, amount, "Hashlock", initial, 3600, meta, wait,
                              os.urandom(32))


def carrying(quote: SwapQuote) -> dict[str, Any]:
    return {"quote": quote_to_json(quote), "recipientAsset": quote.asset_out}


def test_bent_quotes_are_refused_and_only_the_honest_swap_is_paid_out_on_chain(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    token = clients.deployment.test_token
    assert token is not None

    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        payer = await connect_hostile(clients, "payer")
        other = await connect_hostile(clients, "other")
        recipient = await connect_hostile(clients, "recipient")
        try:
            for client in (payer, other, recipient):
                await client.setup()
            await payer.deposit(token, 5 * ETHER)
            await other.deposit(token, 5 * ETHER)

            async def nothing_moved(paid: int, received: int) -> None:
                assert await payer.balances() == {token: 5 * ETHER - paid}
                assert await recipient.balances() == ({ETH: received} if received else {})
                assert await payer.active_transfers() == {}
                assert await recipient.active_transfers() == {}

            quote = await payer.quote(token, ETH, ETHER)
            await nothing_moved(0, 0)

            # 1. raise the amount out (and, separately, waive the fee) of a signed quote
            for bent in (replace(quote, amount_out=quote.amount_out + 1),
                         replace(quote, amount_out=2 * quote.amount_out),
                         replace(quote, fee=0, amount_out=quote.amount_out + quote.fee)):
                with pytest.raises(errors.QuoteAltered):
                    await raw_payment(payer, recipient.address, token, ETHER, carrying(bent))
            # 2. pay less than the quote's amount in, for the quote's amount out
            with pytest.raises(errors.InvalidQuote):
                await raw_payment(payer, recipient.address, token, ETHER // 2, carrying(quote))
            # 3. keep the quote but ask for another asset out than it names
            with pytest.raises(errors.InvalidQuote):
                await raw_payment(payer, recipient.address, token, ETHER,
                                  {**carrying(quote), "recipientAsset": token})
            # 4. another payer's quote (signed for its channel)
            theirs = await other.quote(token, ETH, ETHER)
            with pytest.raises(errors.QuoteForeign):
                await raw_payment(payer, recipient.address, token, ETHER, carrying(theirs))
            # 5. an expired quote
            short = await payer.quote(token, ETH, ETHER, ttl=1)
            await asyncio.sleep(1.2)
            with pytest.raises(errors.QuoteExpired):
                await raw_payment(payer, recipient.address, token, ETHER, carrying(short))
            await nothing_moved(0, 0)

            # the honest payment with the untouched quote pays exactly its amount out
            paid = await raw_payment(payer, recipient.address, token, ETHER, carrying(quote))
            assert paid.status == "completed"
            await nothing_moved(ETHER, quote.amount_out)

            # 6. replay the quote that paid: twice at once, and once more
            replays = await asyncio.gather(*(
                raw_payment(payer, recipient.address, token, ETHER, carrying(quote))
                for _ in range(2)), return_exceptions=True)
            assert all(isinstance(r, errors.QuoteUsed) for r in replays), replays
            with pytest.raises(errors.QuoteUsed):
                await raw_payment(payer, recipient.address, token, ETHER, carrying(quote))
            await nothing_moved(ETHER, quote.amount_out)

            # 7. the recipient takes the quote it saw in its forward's meta for a payment of
            # its own: signed for the payer's channel, not the recipient's
            forward = await recipient.store.run(
                recipient.store.get_transfer, forward_transfer_id(paid.routing_id),
                channel_address=recipient.channel_address)
            assert forward is not None and forward.meta["quote"] == quote_to_json(quote)
            await recipient.deposit(token, ETHER)
            with pytest.raises(errors.QuoteForeign):
                await raw_payment(recipient, payer.address, token, ETHER, carrying(quote))

            # 8. a recipient that refuses a swapped payment: the payer gets its TEST back,
            # the node's ETH stays the node's
            refused = await payer.quote(token, ETH, ETHER)
            recipient.hold_claims = True
            pending = await raw_payment(payer, recipient.address, token, ETHER,
                                        carrying(refused), wait=None)
            held = forward_transfer_id(pending.routing_id)
            await until(lambda: _holds(recipient, held), what="the forward")
            await recipient.cancel(held)
            await until(lambda: _settled(payer), what="the refund")
            assert await payer.balances() == {token: 4 * ETHER}
            assert await recipient.balances() == {ETH: quote.amount_out, token: ETHER}
            recipient.hold_claims = False

            # cash out on chain: each gets exactly what the one honest swap says
            test_token = contract(w3, "TestToken", token)
            payer_out, recipient_out = Signer.random().address, Signer.random().address
            assert (await payer.withdraw(payer_out, token, 4 * ETHER)).status == "confirmed"
            assert (await recipient.withdraw(recipient_out, ETH, quote.amount_out)
                    ).status == "confirmed"
            assert test_token.functions.balanceOf(payer_out).call() == 4 * ETHER
            assert w3.eth.get_balance(recipient_out) == quote.amount_out
            # the node's books: one TEST in, one amount out of ETH, nothing else
            payer_view = node.channel(payer.channel_address)["state"]
            recipient_view = node.channel(recipient.channel_address)["state"]
            assert _side(payer_view, token, 0) == ETHER
            eth_at = recipient_view["assetIds"].index(ETH)
            assert (int(recipient_view["processedDepositsA"][eth_at])
                    - _side(recipient_view, ETH, 0)) == quote.amount_out
        finally:
            for client in (payer, other, recipient):
                await client.close()

    asyncio.run(scenario())


async def _holds(client: Client, transfer_id: bytes) -> bool:
    return transfer_id in await client.active_transfers()


async def _settled(client: Client) -> bool:
    return await client.active_transfers() == {}


def _side(state: dict[str, Any], asset: str, side: int) -> int:
    return int(state["balances"][state["assetIds"].index(asset)][side])


def test_a_swap_the_node_cannot_collateralize_refunds_the_payer_to_the_wei(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    """The node is short of the asset out on chain when a swap needs it: nothing is
    forwarded, the payer's TEST comes back, and once the node is funded again the same
    kind of swap goes through; the payer cashes out exactly what it did not pay."""
    token = clients.deployment.test_token
    assert token is not None

    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        payer = await connect_hostile(clients, "payer")
        recipient = await connect_hostile(clients, "recipient")
        try:
            for client in (payer, recipient):
                await client.setup()
            await payer.deposit(token, 5 * ETHER)
            quote = await payer.quote(token, ETH, ETHER)
            clients.anvil.set_balance(node.address, 10**15)  # gas, but no ETH to lock
            short = await payer.transfer(recipient.address, token, ETHER, quote=quote, wait=60)
            assert short.status == "cancelled"
            assert await payer.balances() == {token: 5 * ETHER}
            assert await recipient.balances() == {}
            assert await payer.active_transfers() == {}

            clients.anvil.set_balance(node.address, 10**24)
            failed = ChannelStore.open(node.env["CONNEXT_NODE_DATABASE_URL"])
            try:  # refused for want of ETH to lock, recorded with the swap it was
                (routing,) = failed.routings_with_status(("failed", "cancelled"))
            finally:
                failed.close()
            assert routing.error is not None and "cannot provide" in routing.error
            assert (routing.recipient_asset_id, routing.recipient_amount) == (
                ETH, quote.amount_out)
            again = await payer.quote(token, ETH, ETHER)
            assert (await payer.transfer(recipient.address, token, ETHER, quote=again,
                                         wait=60)).status == "completed"
            await until(lambda: balances_are(recipient, {ETH: again.amount_out}), 10,
                        "the recipient commits its claim")
            cash_out = Signer.random().address
            assert (await payer.withdraw(cash_out, token, 4 * ETHER)).status == "confirmed"
            test_token = contract(w3, "TestToken", token)
            assert test_token.functions.balanceOf(cash_out).call() == 4 * ETHER
        finally:
            for client in (payer, recipient):
                await client.close()

    asyncio.run(scenario())
