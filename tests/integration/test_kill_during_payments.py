"""SIGKILL on the hot path: five users pay each other in a ring in ETH at full speed, 1,000
routed payments in all, while the node (on SQLite with CONNEXT_SQLITE_SYNC=full, its
store committing as it ships, group commit included) is SIGKILLed at random moments and
right after payments start flowing again, and restarted at once. A payment whose call
raised (the node died under it) or did not say how it ended is asked again with its
payment id, as an app would. Once everything settled, per user, to the wei:

- the balance in the client's latest state is its deposit plus what it received minus
  what it paid, counting exactly the payments its client reports completed;
- every payment reported completed was received exactly once, by its recipient, for its
  amount, and nothing was received that its payer does not report completed;
- nothing stays locked in any channel, the chain holds what each state says, and the
  node's copy of every channel is the user's.

Two users then cash out on chain and get exactly their balances.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from web3 import Web3

from connext.chain.contracts import connect
from connext.client import Client
from connext.client.outcomes import CANCELLED, COMPLETED, routing_id_for
from connext.protocol.serialization import state_from_json
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER, eventually

pytestmark = pytest.mark.timeout(900)

USERS = 5
PAYMENTS = 1000
"""Payments attempted while the node is being killed (the warm-up comes on top)."""
KILLS = 5
DEPOSIT = ETHER
WARM_UP = ETHER // 10
"""Before the kills user i pays (i + 1) * WARM_UP around the ring: each payment is more
than the node holds in its payee's channel, so the node collateralizes every channel with
it plus its target, and the hot path never waits for a deposit on chain."""
ANSWER_WAIT = 5.0
"""Seconds one call waits for its payment to settle; then the app asks again (a payment
cut off by a kill settles after the restart: the next call finds it and waits on)."""
PAYMENT_TIMEOUT = 180.0
"""Seconds the app keeps asking (same payment id) until the SDK says how it ended."""
SEED = int(os.environ.get("KILL_PAYMENTS_SEED", "2026"))


@pytest.fixture
def node_extra_env() -> dict[str, str]:
    # enough collateral for the whole run after the warm-up, and none taken back meanwhile
    profile = {"threshold": "0", "target": str(ETHER), "reclaimThreshold": str(10 * ETHER),
               "cap": str(10 * ETHER)}
    return {"CONNEXT_COLLATERAL": json.dumps({ETH: profile}), "CONNEXT_SQLITE_SYNC": "full"}


@dataclass
class Payment:
    payer: Client
    payee: Client
    amount: int
    raised: int = 0
    """Calls for this payment that raised."""
    answers: list[str] = field(default_factory=list)
    """The statuses the calls that did not raise returned, in order."""


@dataclass
class Ledger:
    """What the test saw happen: every payment by routing id, receipts as the payees saw
    them, and how far the run got (for the killer)."""

    payments: dict[bytes, Payment]
    received: dict[str, Counter[str]]
    started: int = 0
    answered: int = 0


def test_node_killed_during_1000_payments_at_full_speed_loses_and_duplicates_nothing(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    rng = random.Random(SEED)

    async def pay(ledger: Ledger, payer: Client, payee: Client, key: str, amount: int) -> None:
        """Pay and ask again with the same payment id, as an app would, until the SDK
        answers how the payment ended: after a call that raised, and after "pending" (not
        settled within the wait) or "unknown" (never made: a proposal the node never took
        is void once the node proposes another at its nonce)."""
        routing_id = routing_id_for(payer, key)
        payment = ledger.payments[routing_id] = Payment(payer, payee, amount)
        ledger.started += 1
        deadline = asyncio.get_running_loop().time() + PAYMENT_TIMEOUT
        while asyncio.get_running_loop().time() < deadline:
            try:
                result = await payer.transfer(payee.address, ETH, amount, payment_id=key,
                                              wait=ANSWER_WAIT)
            except Exception:  # the node is down or restarting
                payment.raised += 1
                await asyncio.sleep(0.1)
                continue
            assert result.routing_id == routing_id
            payment.answers.append(result.status)
            if result.status in (COMPLETED, CANCELLED):
                break
        ledger.answered += 1

    async def scenario() -> None:
        users = [await clients.connect() for _ in range(USERS)]
        ledger = Ledger(payments={}, received={u.address: Counter() for u in users})
        for user in users:
            await user.setup()
            await user.deposit(ETH, DEPOSIT)

            def on_received(event: dict[str, Any], to: str = user.address) -> None:
                ledger.received[to].update([str(event.get("routingId"))])
            user.on("transfer.received", on_received)
        ring = [(user, users[(i + 1) % USERS]) for i, user in enumerate(users)]
        for i, (payer, payee) in enumerate(ring):
            await pay(ledger, payer, payee, "warm-up", (i + 1) * WARM_UP)
        assert all(p.answers == [COMPLETED] for p in ledger.payments.values())
        for user in users:  # far more than the hot payments can move (at most 0.2 ETH)
            assert (await user.channel()).balance_of(ETH).alice >= ETHER // 2
        hot = ledger.started

        async def payer_loop(payer: Client, payee: Client, count: int) -> None:
            for n in range(count):
                await pay(ledger, payer, payee, f"hot-{n}", rng.randint(1, 1000) * 10**12)

        kills: list[tuple[int, float]] = []  # payments started, seconds down

        # kills alternate: right as a burst starts (the run's first answers, the first
        # answers after a restart) and at random points spread over the run
        points = iter(sorted(rng.sample(range(100, PAYMENTS - 100), KILLS // 2)))

        async def killer() -> None:
            for kill in range(KILLS):
                if kill % 2 == 0:
                    answered = ledger.answered
                    while ledger.answered == answered and ledger.started < hot + PAYMENTS:
                        await asyncio.sleep(0.005)
                else:
                    point = hot + next(points)
                    while ledger.started < point:
                        await asyncio.sleep(0.005)
                if ledger.started >= hot + PAYMENTS:
                    return  # the payments are all out: a kill now is not during them
                node.kill()
                down = asyncio.get_running_loop().time()
                await asyncio.to_thread(node.start)
                kills.append((ledger.started - hot,
                              asyncio.get_running_loop().time() - down))

        started = asyncio.get_running_loop().time()
        killing = asyncio.create_task(killer())
        try:
            await asyncio.gather(*(payer_loop(payer, payee, PAYMENTS // USERS)
                                   for payer, payee in ring))
        except BaseException:
            killing.cancel()
            raise
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await killing
        elapsed = asyncio.get_running_loop().time() - started
        hot_payments = list(ledger.payments.values())[USERS:]
        assert len(hot_payments) == PAYMENTS
        assert len(kills) == KILLS, f"the payments ended after {len(kills)} kills"
        print(f"{PAYMENTS} payments in {elapsed:.1f} s; node killed after "
              + ", ".join(f"{n} started (down {down:.1f} s)" for n, down in kills)
              + f"; {sum(p.raised > 0 for p in hot_payments)} had a call raise; answers: "
              + str(Counter("/".join(p.answers) for p in hot_payments)))

        # everything settles: nothing active or unsettled on either side
        for user in users:
            await user.sync()

        async def settled() -> bool:
            for user in users:
                if await user.active_transfers():
                    return False
                stored = await user.engine.channel(user.channel_address)
                if stored is None or stored.pending_update is not None:
                    return False
                node_copy = await asyncio.to_thread(node.channel, user.channel_address)
                if node_copy["activeTransfers"]:
                    return False
            return True

        await eventually(settled, timeout=120)

        # every payment ended one way or the other; a completed answer stays completed
        status = {rid: await p.payer.payment_status(routing_id=rid)
                  for rid, p in ledger.payments.items()}
        assert set(status.values()) <= {COMPLETED, CANCELLED}, Counter(status.values())
        completed = {rid for rid, s in status.items() if s == COMPLETED}
        assert {rid for rid, p in ledger.payments.items() if COMPLETED in p.answers} <= completed

        # each completed payment was received exactly once, by its payee, for its amount
        by_hex = {"0x" + rid.hex(): rid for rid in ledger.payments}
        for user in users:
            seen = ledger.received[user.address]
            assert all(n == 1 for n in seen.values()), seen.most_common(3)
            logged: Counter[str] = Counter()
            for event in await user.history(limit=100_000):
                if event.kind == "transfer.received":
                    routing = str(event.payload["routingId"])
                    logged[routing] += 1
                    assert routing in by_hex, f"received {routing}, which nobody paid"
                    payment = ledger.payments[by_hex[routing]]
                    assert payment.payee is user and event.payload["from"] == payment.payer.address
                    assert int(event.payload["amount"]) == payment.amount, routing
            assert logged == seen, "the activity log and the events disagree"
        assert all(r in by_hex for seen in ledger.received.values() for r in seen)
        received = {by_hex[r] for seen in ledger.received.values() for r in seen}
        assert received == completed, (len(received - completed), len(completed - received))

        # each balance is the deposit plus what came in minus what went out, to the wei;
        # nothing is locked, the chain holds it, and the node's copy is the user's
        w3 = connect(clients.anvil.url)
        for user in users:
            paid = sum(p.amount for rid, p in ledger.payments.items()
                       if p.payer is user and rid in completed)
            got = sum(p.amount for rid, p in ledger.payments.items()
                      if p.payee is user and rid in completed)
            state = await user.channel()
            balance = state.balance_of(ETH)
            assert balance.bob == DEPOSIT + got - paid, user.address
            index = state.asset_index(ETH)
            assert index is not None
            deposited = state.processed_deposits_a[index] + state.processed_deposits_b[index]
            assert balance.alice + balance.bob == deposited, "funds locked in the channel"
            assert _eth_held(w3, user.channel_address) == deposited
            node_copy = await asyncio.to_thread(node.channel, user.channel_address)
            assert state_from_json(node_copy["state"]) == state, user.address

        # two users cash out on chain and get exactly their balances
        for user in users[:2]:
            cold = Signer.random().address
            amount = (await user.balances())[ETH]
            result = await user.withdraw(cold, ETH, amount, wait=60)
            assert result.status == "confirmed", result
            assert _eth_held(w3, cold) == amount
        for user in users:
            await user.close()

    try:
        asyncio.run(scenario())
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- node log (last part) ---\n"
                             + node.output()[-8000:]) from exc


def _eth_held(w3: Web3, address: str) -> int:
    return int(w3.eth.get_balance(Web3.to_checksum_address(address)))
