"""Outcomes are never unknown to the caller: a payment whose replies are lost returns
"pending" with its ids instead of raising, and later ends as completed; calling again with
the same payment id returns the same payment and never pays twice; a link's secret can
always be shown again, even when its creation never got an answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connext.client import Client
from connext.engine.engine import UPDATE_METHOD
from connext.messaging import MessagingTimeout
from connext.protocol import errors
from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER, balances_are, eventually


def lose_replies(client: Client, count: int) -> list[int]:
    """The next `count` replies to the client's own updates are lost on the way back (the
    node got and took each request); returns a list that counts the losses."""
    lost: list[int] = []
    send = client.messaging.request

    async def request(to: str, method: str, body: dict[str, Any], **kwargs: Any) -> Any:
        reply = await send(to, method, body, **kwargs)
        if method == UPDATE_METHOD and len(lost) < count:
            lost.append(1)
            raise MessagingTimeout("the reply was lost")
        return reply

    client.messaging.request = request  # type: ignore[method-assign]
    return lost


def test_a_payment_whose_replies_are_lost_is_pending_then_completes_and_is_paid_once(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        payer, payee = await clients.connect(), await clients.connect()
        await payer.setup()
        await payee.setup()
        await payer.deposit(ETH, ETHER)
        lost = lose_replies(payer, 3)  # the create and both of the engine's re-sends
        first = await payer.transfer(payee.address, ETH, ETHER // 10, payment_id="order-17",
                                     wait=None)
        assert len(lost) == 3
        assert first.status == "pending" and first.routing_id and first.transfer_id
        assert await payer.payment_status(payment_id="order-17") in ("pending", "completed")

        # the caller retries with the same key: the same payment, paid once
        again = await payer.transfer(payee.address, ETH, ETHER // 10, payment_id="order-17")
        assert (again.routing_id, again.transfer_id) == (first.routing_id, first.transfer_id)
        assert again.status == "completed"
        assert await payer.payment_status(routing_id=first.routing_id) == "completed"
        assert await payer.balances() == {ETH: ETHER - ETHER // 10}
        # the payee commits its claim when the node's answer reaches it, which can be a
        # moment after the node settled the payer
        await eventually(lambda: balances_are(payee, {ETH: ETHER // 10}), timeout=5)
        third = await payer.transfer(payee.address, ETH, ETHER // 10, payment_id="order-17")
        assert third.status == "completed" and third.transfer_id == first.transfer_id
        assert await payee.balances() == {ETH: ETHER // 10}

        # a key names one payment: other terms under it are refused, nothing moves
        with pytest.raises(errors.PaymentIdReused):
            await payer.transfer(payee.address, ETH, ETHER // 5, payment_id="order-17")
        assert await payer.payment_status(payment_id="never-used") == "unknown"
        assert await payer.balances() == {ETH: ETHER - ETHER // 10}
        await payer.close()
        await payee.close()

    asyncio.run(scenario())


def test_a_pending_payment_completes_by_itself_and_a_link_secret_is_never_lost(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        payer, payee = await clients.connect(), await clients.connect()
        await payer.setup()
        await payee.setup()
        await payer.deposit(ETH, ETHER)

        lose_replies(payer, 3)
        result = await payer.transfer(payee.address, ETH, ETHER // 10, wait=None)
        assert result.status == "pending"
        # nobody calls again: the client's recovery re-sends it and it completes
        await eventually(lambda: payee.balances(), timeout=30)
        await eventually(lambda: _status(payer, result.routing_id, "completed"), timeout=30)

        # every reply is lost until the checks below are done (the client's recovery
        # re-sends the create too, and would otherwise race them)
        send = payer.messaging.request
        lost = lose_replies(payer, 10**6)
        link = await payer.create_link(ETH, ETHER // 4, payment_id="gift-1")
        assert len(lost) >= 3  # the create and both of the engine's re-sends
        assert link.status == "pending"  # the node did not answer: not known to be locked
        shown = await payer.links()
        assert [(x.routing_id, x.code) for x in shown] == [(link.routing_id, link.code)]
        payer.messaging.request = send  # type: ignore[method-assign]
        await eventually(lambda: _link_open(payer, link.routing_id), timeout=30)
        assert (await payer.create_link(ETH, ETHER // 4, payment_id="gift-1")).code == link.code
        redeemed = await payee.redeem_link(link.code)
        assert redeemed.status == "completed"
        assert await payee.balances() == {ETH: ETHER // 10 + ETHER // 4}
        await eventually(lambda: _link_status(payer, link.routing_id, "claimed"), timeout=30)
        await payer.close()
        await payee.close()

    asyncio.run(scenario())


async def _status(client: Client, routing_id: bytes, expected: str) -> bool:
    return await client.payment_status(routing_id=routing_id) == expected


async def _link_open(client: Client, routing_id: bytes) -> bool:
    return await _link_status(client, routing_id, "open")


async def _link_status(client: Client, routing_id: bytes, expected: str) -> bool:
    return [x.status for x in await client.links() if x.routing_id == routing_id] == [expected]
