"""Kill loop: clients pay each other in ETH and TEST, create and redeem links, withdraw,
and the node reclaims collateral, while the node is SIGKILLed at random moments (and right
after it proposed a reclaim, the window where a countersignature gets cut off) and
restarted. Afterwards everyone cashes out, and per asset, to the wei:

- every channel holds exactly what its latest state says, with nothing locked in it;
- every user's cash-out equals its deposit plus what it received minus what it paid,
  counting the payments its client reports completed (asked once everything settled);
- every payment the SDK reported completed was received exactly once.

`KILL_LOOP_KILLS` sets the number of kills (10 in `make test`, 100 in `make soak`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from collections import Counter
from typing import Any

import pytest

from connext.chain.channel import ChannelContract
from connext.chain.contracts import connect, contract
from connext.client import Client
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER, eventually

KILLS = int(os.environ.get("KILL_LOOP_KILLS", "10"))
USERS = 5
DEPOSIT = ETHER
TIMEOUT = 60.0


@pytest.fixture
def node_extra_env(deployment: Any) -> dict[str, str]:
    profile = {"threshold": "0", "target": str(ETHER // 50),
               "reclaimThreshold": str(ETHER // 20), "cap": str(10 * ETHER)}
    limits = {"minPayment": "1", "minWithdrawal": "1"}
    assets = [ETH, deployment.test_token]
    return {
        "CONNEXT_COLLATERAL": json.dumps({a: profile for a in assets}),
        "CONNEXT_LIMITS": json.dumps({a: limits for a in assets}),
        "CONNEXT_WITHDRAWALS_PER_HOUR": "0",
        "CONNEXT_SETUPS_PER_HOUR": "0",
    }


class Ledger:
    """What the test saw happen: deposits, payments reported completed, receipts."""

    def __init__(self) -> None:
        self.sent: list[tuple[Client, bytes]] = []  # every payment attempted, by payer
        self.reported: list[bytes] = []  # routing ids the SDK said were completed
        self.received: Counter[str] = Counter()  # routing ids as the payees saw them
        self.links: list[tuple[Client, Any]] = []


def test_the_node_killed_again_and_again_loses_and_duplicates_nothing(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    token = clients.deployment.test_token
    assert token is not None
    assets = (ETH, token)
    rng = random.Random(int(os.environ.get("KILL_LOOP_SEED", "2026")))

    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        ledger = Ledger()
        users = [await clients.connect() for _ in range(USERS)]
        for user in users:
            await user.setup()
            for asset in assets:
                await user.deposit(asset, DEPOSIT)
            user.on("transfer.received",
                    lambda e: ledger.received.update([str(e.get("routingId"))]))
        cold = {u.address: Signer.random().address for u in users}
        reclaim_proposed = asyncio.Event()
        for user in users:
            async def on_update(event: dict[str, Any]) -> None:
                if event.get("type") == "create":
                    reclaim_proposed.set()
            user.on("channel.updated", on_update)

        stop = asyncio.Event()

        async def act(user: Client) -> None:
            while not stop.is_set():
                others = [u for u in users if u is not user]
                asset = rng.choice(assets)
                roll = rng.random()
                try:
                    if roll < 0.6:
                        payee = rng.choice(others)
                        amount = rng.randint(1, 10) * 10**15
                        key = os.urandom(8).hex()
                        ledger.sent.append((user, _routing_for(user, key)))
                        result = await user.transfer(payee.address, asset, amount,
                                                     payment_id=key, wait=5)
                        if result.status == "completed":
                            ledger.reported.append(result.routing_id)
                    elif roll < 0.75:
                        link = await user.create_link(asset, 10**15, payment_id=os.urandom(8))
                        ledger.links.append((user, link))
                        ledger.sent.append((user, link.routing_id))
                        if rng.random() < 0.7:
                            redeemed = await rng.choice(others).redeem_link(link.code, wait=5)
                            if redeemed.status == "completed":
                                ledger.reported.append(link.routing_id)
                    elif roll < 0.85:
                        await user.withdraw(cold[user.address], asset, 10**14, wait=5)
                    else:
                        await asyncio.sleep(0.05)
                except Exception:
                    await asyncio.sleep(0.2)  # the node is down, or the channel busy

        async def killer() -> None:
            for kill in range(KILLS):
                if kill % 4 == 3:  # right after the node proposed something (a reclaim...)
                    reclaim_proposed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(reclaim_proposed.wait(), 10)
                else:
                    await asyncio.sleep(rng.uniform(0.3, 1.5))
                node.kill()
                await asyncio.sleep(rng.uniform(0.0, 0.5))
                await asyncio.to_thread(node.start)

        workers = [asyncio.create_task(act(u)) for u in users]
        await killer()
        stop.set()
        await asyncio.gather(*workers)

        # let everything settle: unclaimed links back to their creators, recovery done
        for user in users:
            await user.sync()

        async def settled() -> bool:
            for user in users:
                for link in await user.links():
                    if link.status == "open":  # nobody claimed it: take it back
                        with contextlib.suppress(Exception):  # claimed meanwhile
                            await user.cancel_link(link.routing_id)
                if await user.active_transfers():
                    return False
                if (await user.engine.channel(user.channel_address)).pending_update is not None:
                    return False
                if node.channel(user.channel_address)["activeTransfers"]:
                    return False
            return True

        await eventually(settled, timeout=120)

        # every completed payment was received exactly once
        assert all(n == 1 for n in ledger.received.values()), ledger.received.most_common(3)
        assert {"0x" + r.hex() for r in ledger.reported} <= set(ledger.received)

        # every channel holds what its latest state says, once the node's withdraw
        # transactions for cash-outs settled in the channels are mined
        expected_out: dict[tuple[str, str], int] = {}
        for user in users:
            state = await user.channel()
            channel = ChannelContract(w3, user.channel_address, node.address, user.address)
            for asset in assets:
                balance = state.balance_of(asset)

                def matches(address: str = channel.address, asset: str = asset,
                            total: int = balance.alice + balance.bob) -> bool:
                    return _held(w3, address, asset) == total

                with contextlib.suppress(AssertionError):
                    await eventually(matches, timeout=60)
                held = _held(w3, channel.address, asset)
                assert held == balance.alice + balance.bob, (user.address, asset)
                expected_out[user.address, asset] = balance.bob

        # each user's balance is its deposit plus what it got minus what it paid
        paid: Counter[tuple[str, str]] = Counter()
        got: Counter[tuple[str, str]] = Counter()
        for payer, routing_id in ledger.sent:
            if await payer.payment_status(routing_id=routing_id) != "completed":
                continue
            transfer = await asyncio.to_thread(payer.store.transfer_record,
                                               _transfer_of(routing_id))
            assert transfer is not None and transfer.created_balance is not None
            amount = transfer.created_balance.amount[0]
            paid[payer.address, transfer.transfer.asset_id] += amount
        for user in users:
            for event in await user.history(limit=100_000):
                if event.kind == "transfer.received":
                    got[user.address, event.payload["assetId"]] += int(event.payload["amount"])

        def balanced() -> bool:  # withdrawals a restart cut off are being paid meanwhile
            return all(expected_out[u.address, a] + _held(w3, cold[u.address], a)
                       == DEPOSIT - paid[u.address, a] + got[u.address, a]
                       for u in users for a in assets)

        await eventually(balanced, timeout=60)

        # everyone cashes out: the cold addresses get exactly the balances
        for user in users:
            for asset in assets:
                amount = expected_out[user.address, asset]
                if amount:
                    result = await user.withdraw(cold[user.address], asset, amount, wait=TIMEOUT)
                    assert result.status == "confirmed", result
        for user in users:
            for asset in assets:
                key = (user.address, asset)
                assert _held(w3, cold[user.address], asset) == DEPOSIT - paid[key] + got[key]
            await user.close()

    try:
        asyncio.run(scenario())
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- node log (last part) ---\n"
                             + node.output()[-8000:]) from exc


def _held(w3: Any, address: str, asset: str) -> int:
    if asset == ETH:
        return int(w3.eth.get_balance(address))
    return int(contract(w3, "TestToken", asset).functions.balanceOf(address).call())


def _routing_for(user: Client, key: str) -> bytes:
    from connext.client.outcomes import routing_id_for

    return routing_id_for(user, key)


def _transfer_of(routing_id: bytes) -> bytes:
    from connext.client.outcomes import transfer_id_of

    return transfer_id_of(routing_id)
