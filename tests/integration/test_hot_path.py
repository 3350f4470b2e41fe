"""The payment hot path on a real node (SQLite with synchronous=FULL, its default): payments
one after another never collide with the node's own updates (the recipient's resolve and
the sender's next payment wait for the node's commit instead of being refused busy), and
the node's writes are group committed."""

from __future__ import annotations

import asyncio

from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_node_http import get, metric
from .test_payments import ETHER, eventually

PAYMENTS = 30


def _sum(text: str, prefix: str, label: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix) and label in line)


async def settled(node: NodeProcess, payments: int) -> str:
    """The node's metrics once it has resolved `payments` payments."""
    def metrics() -> str:
        return get(node, "/metrics")[1].decode()

    await eventually(lambda: metric(metrics(), 'connext_payments_total{status="resolved"}')
                     >= payments)
    return metrics()


def test_payments_in_a_row_meet_no_busy_channel(clients: ClientFactory,
                                                node: NodeProcess) -> None:
    async def pay() -> list[str]:
        a, b = await clients.connect(), await clients.connect()
        await a.setup()
        await b.setup()
        await a.deposit(ETH, ETHER)
        assert (await a.transfer(b.address, ETH, 10**12)).status == "completed"  # collateral
        # a's transfer completes once a stored the node's resolve, a moment before the node
        # commits it: the counters are read once the node has settled what it measures
        before = await settled(node, 1)
        statuses = [(await a.transfer(b.address, ETH, 10**12)).status for _ in range(PAYMENTS)]
        after = await settled(node, 1 + PAYMENTS)
        # b commits its last claim when the node's answer reaches it, a moment after the
        # node settled a's payment
        async def b_was_paid() -> bool:
            return (await b.balances()).get(ETH) == (PAYMENTS + 1) * 10**12

        await eventually(b_was_paid)
        await a.close()
        await b.close()
        busy = (_sum(after, "connext_request_failures_total{", 'code="channel_busy"')
                - _sum(before, "connext_request_failures_total{", 'code="channel_busy"'))
        assert busy == 0
        writes = (metric(after, 'connext_operations_total{op="db_writes"}')
                  - metric(before, 'connext_operations_total{op="db_writes"}'))
        commits = (metric(after, 'connext_operations_total{op="db_commits"}')
                   - metric(before, 'connext_operations_total{op="db_commits"}'))
        assert writes >= 4 * PAYMENTS and 0 < commits <= writes
        return statuses

    assert asyncio.run(pay()) == ["completed"] * PAYMENTS
