"""The node never refunds a sender while the recipient may still take the forward.

Once the node has signed the forward into the recipient's channel, the recipient holds
half of a valid state: it can add its own signature and enforce it on chain whatever it
answered. A recipient that answers the forward with an error but keeps it must therefore
not get the sender refunded (the node would pay twice); the payment stays pending until the
recipient takes the forward, or until the forward's lock has expired.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from connext.client import Client
from connext.engine.engine import UPDATE_METHOD
from connext.protocol import errors
from connext.protocol.serialization import update_from_json
from connext.protocol.transfers import HASHLOCK
from connext.protocol.types import ETH, CreateDetails

from .conftest import ClientFactory
from .test_payments import ETHER, eventually


class KeepingRecipient(Client):
    """A recipient that answers the node's first `refusals` transfer proposals with an
    error, and keeps each of them (the node's signed update) in `kept`."""

    refusals = 0

    def _bind(self, method: str, handler: Any) -> None:
        if method == UPDATE_METHOD:
            self.kept: list[dict[str, Any]] = []
            honest = handler

            async def refusing(sender: str, body: dict[str, Any]) -> dict[str, Any]:
                update = body.get("update") or {}
                if update.get("type") == "create" and self.refusals != 0:
                    self.refusals -= 1
                    self.kept.append(update)
                    raise errors.InvalidUpdate("not now")
                return await honest(sender, body)

            handler = refusing
        super()._bind(method, handler)


async def connect_keeping(clients: ClientFactory, refusals: int) -> KeepingRecipient:
    signer = clients.signer()
    recipient = await KeepingRecipient.connect(
        signer,
        node_address=clients.node.address,
        nats_url=clients.nats.url,
        chain_url=clients.anvil.url,
        database_url=f"sqlite:///{clients.tmp_path / 'keeping.sqlite'}",
        deployment=clients.deployment,
    )
    assert isinstance(recipient, KeepingRecipient)
    recipient.refusals = refusals
    return recipient


def node_signed_forward(recipient: KeepingRecipient, amount: int) -> CreateDetails:
    """The kept proposal is a forward of `amount` to the recipient signed by the node (the
    channel's alice): one signature short of a state the recipient can enforce alone."""
    update = update_from_json(recipient.kept[0])
    assert isinstance(update.details, CreateDetails)
    assert update.details.balance.amount[0] == amount
    assert update.alice_signature is not None and update.bob_signature is None
    return update.details


def test_a_forward_refused_but_kept_is_delivered_later_never_refunded(
    clients: ClientFactory,
) -> None:
    async def scenario() -> None:
        sender = await clients.connect()
        recipient = await connect_keeping(clients, refusals=1)
        await sender.setup()
        await recipient.setup()
        await sender.deposit(ETH, ETHER)
        cancelled: list[dict[str, Any]] = []
        sender.on("transfer.cancelled", cancelled.append)

        result = await sender.transfer(recipient.address, ETH, ETHER // 10, wait=30)

        assert len(recipient.kept) == 1
        node_signed_forward(recipient, ETHER // 10)
        assert result.status == "completed"
        assert cancelled == []
        assert await sender.balances() == {ETH: ETHER - ETHER // 10}
        assert await recipient.balances() == {ETH: ETHER // 10}
        assert await sender.active_transfers() == {}
        await sender.close()
        await recipient.close()

    asyncio.run(scenario())


def test_a_forward_never_taken_is_refunded_only_after_it_expired(
    clients: ClientFactory,
) -> None:
    async def scenario() -> None:
        sender = await clients.connect()
        recipient = await connect_keeping(clients, refusals=-1)  # refuses everything
        await sender.setup()
        await recipient.setup()
        await sender.deposit(ETH, ETHER)
        refunded_at: list[float] = []
        sender.on("transfer.cancelled", lambda _event: refunded_at.append(time.time()))

        payment = asyncio.create_task(
            sender.transfer(recipient.address, ETH, ETHER // 10, timeout=10, wait=60)
        )
        await eventually(lambda: len(recipient.kept) >= 1)
        forward = node_signed_forward(recipient, ETHER // 10)
        _lock, forward_expiry = HASHLOCK.decode_state(forward.initial_state)
        # the node keeps re-sending the same signed forward; the sender's money stays locked
        await eventually(lambda: len(recipient.kept) >= 2)
        assert recipient.kept[1] == recipient.kept[0]
        assert refunded_at == []
        assert len(await sender.active_transfers()) == 1

        result = await payment
        assert result.status == "cancelled"
        assert refunded_at and refunded_at[0] >= forward_expiry
        assert await sender.balances() == {ETH: ETHER}
        assert (await recipient.balances()).get(ETH, 0) == 0
        await sender.close()
        await recipient.close()

    asyncio.run(scenario())
