"""The node is SIGKILLed during a stream of payments and restarted on the same database."""

from __future__ import annotations

import asyncio
from typing import Any

from web3 import Web3

from connext.chain.channel import ChannelContract
from connext.client import Client, PaymentResult
from connext.engine.engine import UPDATE_METHOD
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER, eventually

AMOUNT = 10**15


def test_no_payment_is_lost_or_duplicated_across_a_node_crash(
    clients: ClientFactory, node: NodeProcess
) -> None:
    async def scenario() -> None:
        payer = await clients.connect()
        payee = await clients.connect()
        await payer.setup()
        await payee.setup()
        await payer.deposit(ETH, ETHER)
        received: list[str] = []
        payee.on("transfer.received", lambda event: received.append(event["routingId"]))

        attempts = 0
        failures = 0
        returned: list[PaymentResult] = []

        async def stream(count: int) -> None:
            nonlocal attempts, failures
            for _ in range(count):
                attempts += 1
                try:  # a payment whose fate the node did not tell yet returns "pending"
                    returned.append(await payer.transfer(payee.address, ETH, AMOUNT, wait=2))
                except Exception:
                    failures += 1  # the node was down: nothing was paid

        paying = asyncio.create_task(stream(60))
        await eventually(lambda: attempts >= 15, timeout=60)
        node.kill()  # SIGKILL: no shutdown code runs
        await eventually(lambda: attempts >= 20 or paying.done(), timeout=60)
        node.start()
        await paying
        await payer.sync()
        await payee.sync()

        async def settled() -> bool:
            return not await payer.active_transfers() and not await payee.active_transfers()

        await eventually(settled, timeout=60)
        paid = ETHER - (await payer.balances())[ETH]
        got = (await payee.balances())[ETH]
        assert paid == got, "every payment the payer lost, the payee got"
        assert paid % AMOUNT == 0 and got // AMOUNT == len(received)
        assert len(set(received)) == len(received), "no payment arrived twice"
        # every call that did not raise ends known: paid (and received once), or not made
        outcomes = [await payer.payment_status(routing_id=r.routing_id) for r in returned]
        assert set(outcomes) <= {"completed", "cancelled", "unknown"}, outcomes
        completed = {"0x" + r.routing_id.hex() for r, o in zip(returned, outcomes, strict=True)
                     if o == "completed"}
        assert completed == set(received)
        assert {"0x" + r.routing_id.hex() for r in returned if r.status == "completed"} \
            <= completed
        assert failures < attempts, "payments went through"

        # both channels continue, and both sides agree on them
        result = await payer.transfer(payee.address, ETH, AMOUNT)
        assert result.status == "completed"
        for client in (payer, payee):
            # read both sides each time: the payee's own resolve may still be on its way
            # back to it when the payer already saw the payment completed
            async def agree(c: Client = client) -> bool:
                node_nonce = int(node.channel(c.channel_address)["state"]["nonce"])
                return node_nonce == (await c.channel()).nonce

            await eventually(agree)
            await eventually(
                lambda c=client: not node.channel(c.channel_address)["activeTransfers"])
            view = node.channel(client.channel_address)
            balances = view["state"]["balances"][0]
            deposits = view["state"]
            assert int(balances[0]) + int(balances[1]) == (
                int(deposits["processedDepositsA"][0]) + int(deposits["processedDepositsB"][0]))
        await payer.close()
        await payee.close()

    try:
        asyncio.run(scenario())
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- node log (last part) ---\n"
                             + node.output()[-8000:]) from exc




def test_a_withdrawal_whose_countersigned_resolve_a_crash_cut_off_is_paid_once(
    clients: ClientFactory, node: NodeProcess, w3: Web3,
) -> None:
    """The user stores the node's resolve of its withdrawal (with the node's signature on
    the commitment) and answers; the node is SIGKILLed before the answer arrives. After the
    restart the node learns its resolve went through only from the user (the recovery
    sends it again): it must pay the commitment on chain then, once."""

    async def scenario() -> None:
        user = await clients.connect()
        await user.setup()
        await user.deposit(ETH, ETHER)
        cold = Signer.random().address
        amount = ETHER // 4

        stored, release = asyncio.Event(), asyncio.Event()
        handlers = user.messaging._handlers
        answer = handlers[UPDATE_METHOD]

        async def slow_answer(envelope: Any) -> dict[str, Any]:
            reply = await answer(envelope)  # stored: the user holds the node's signature
            if envelope.body["update"]["type"] == "resolve" and not release.is_set():
                stored.set()
                await release.wait()  # the answer leaves once the node is dead
            return reply

        handlers[UPDATE_METHOD] = slow_answer
        await user.withdraw(cold, ETH, amount, wait=None)
        await asyncio.wait_for(stored.wait(), 30)
        node.kill()
        release.set()
        await asyncio.to_thread(node.start)

        await eventually(lambda: w3.eth.get_balance(cold) == amount, timeout=30)
        state = await user.channel()
        assert state.balance_of(ETH).bob == ETHER - amount
        channel = ChannelContract(w3, user.channel_address, node.address, user.address)
        balance = state.balance_of(ETH)
        await eventually(lambda: w3.eth.get_balance(channel.address)
                         == balance.alice + balance.bob, timeout=30)
        await user.close()

    asyncio.run(scenario())
