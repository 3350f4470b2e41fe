"""A payment to an offline recipient waits for it, or is refunded when it expires."""

from __future__ import annotations

import asyncio
from typing import Any

from connext.protocol.types import ETH

from .conftest import ClientFactory
from .test_payments import ETHER, eventually


def test_payment_reaches_a_recipient_when_it_reconnects(clients: ClientFactory) -> None:
    async def scenario() -> None:
        sender = await clients.connect()
        recipient_signer = clients.signer()
        recipient_db = f"sqlite:///{clients.tmp_path / 'recipient.sqlite'}"
        recipient = await clients.connect(recipient_signer, recipient_db)
        await sender.setup()
        await recipient.setup()
        await recipient.close()  # offline from here on
        await sender.deposit(ETH, ETHER)

        result = await sender.transfer(recipient_signer.address, ETH, ETHER // 10, wait=2)
        assert result.status == "pending"
        assert await sender.balances() == {ETH: ETHER - ETHER // 10}

        completed: list[dict[str, Any]] = []
        sender.on("transfer.completed", completed.append)
        received: list[dict[str, Any]] = []
        back = await clients.connect(recipient_signer, recipient_db)
        back.on("transfer.received", received.append)
        await back.sync()
        await eventually(lambda: len(completed) == 1 and len(received) == 1)
        assert await back.balances() == {ETH: ETHER // 10}
        assert completed[0]["routingId"] == "0x" + result.routing_id.hex()
        assert await sender.active_transfers() == {}
        await sender.close()
        await back.close()

    asyncio.run(scenario())


def test_payment_to_a_recipient_who_never_returns_is_refunded_after_expiry(
    clients: ClientFactory,
) -> None:
    async def scenario() -> None:
        sender = await clients.connect()
        recipient = await clients.connect()
        await sender.setup()
        await recipient.setup()
        await recipient.close()
        await sender.deposit(ETH, ETHER)

        result = await sender.transfer(recipient.address, ETH, ETHER // 10, timeout=8, wait=30)
        assert result.status == "cancelled"
        assert await sender.balances() == {ETH: ETHER}
        assert await sender.active_transfers() == {}
        await sender.close()

    asyncio.run(scenario())
