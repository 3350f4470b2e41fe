"""Routed payments with a swap on the way, next to the same payments without one.

One stack whose node swaps TEST for ETH (rate 1, 30 bps): each sender holds ETH and TEST,
each recipient receives ETH. The plain run pays ETH -> ETH; the swap run pays TEST and the
recipient gets ETH, each payment asking the node for a quote first (a request/reply the
plain payment does not have) and carrying it; the node checks the quote and marks it used
(one more durable write) before it countersigns. Same pairs, same recipients' collateral,
same amounts out (about): the difference is what a swap costs. It reports; it never asserts.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import psutil

from connext.chain.deploy import mint_test_token
from connext.client import Client
from connext.protocol.types import ETH

from .payments import WARM_UP, _cpu, open_pair
from .report import percentile
from .stack import Stack, bench_workdir, running_stack

PAIRS = 10
PAYMENTS_PER_PAIR = 30
SECONDS = 20.0
AMOUNT = 2 * 10**9
"""Per payment: ETH paid (plain), or TEST paid for ~AMOUNT less 0.3 % of ETH (swap)."""
SWAPS = [{"from": "TEST", "to": "ETH", "rate": "1", "feeBps": 30}]


def measure_swaps(pairs: int = PAIRS, payments_per_pair: int = PAYMENTS_PER_PAIR,
                  seconds: float = SECONDS) -> dict[str, Any]:
    node_env = {"CONNEXT_SWAPS": json.dumps(SWAPS), "CONNEXT_QUOTES_PER_HOUR": "0"}
    with bench_workdir("connext-bench-swaps-") as workdir, \
            running_stack(workdir, node_env=node_env) as stack:
        plain, swapped = asyncio.run(_both_runs(stack, workdir, pairs, payments_per_pair,
                                                seconds))
    return {"pairs": pairs, "seconds_per_run": seconds, "without_swap": plain,
            "with_swap": swapped,
            "swap_over_plain_throughput": round(
                swapped["payments_per_second"] / plain["payments_per_second"], 2)}


async def _both_runs(stack: Stack, workdir: Path, pairs: int, payments_per_pair: int,
                     seconds: float) -> tuple[dict[str, Any], dict[str, Any]]:
    minting = asyncio.Lock()  # one deployer account mints: its transactions in turn
    clients = await asyncio.gather(*(_open_pair(stack, workdir, i, minting)
                                     for i in range(pairs)))
    # collateralize every recipient's ETH once, so neither run measures chain deposits
    await asyncio.gather(*(s.transfer(r.address, ETH, WARM_UP) for s, r in clients))
    try:
        plain = await _run(stack, clients, payments_per_pair, seconds, swap=False)
        swapped = await _run(stack, clients, payments_per_pair, seconds, swap=True)
    finally:
        for sender, recipient in clients:
            await sender.close()
            await recipient.close()
    return plain, swapped


async def _open_pair(stack: Stack, workdir: Path, index: int,
                     minting: asyncio.Lock) -> tuple[Client, Client]:
    """A pair as bench/payments.py opens it, whose sender also holds 100 TEST."""
    token = stack.deployment.test_token
    assert token is not None
    sender, recipient = await open_pair(stack, workdir, index)
    async with minting:
        await asyncio.to_thread(mint_test_token, stack.anvil.url, stack.anvil.private_keys[0],
                                token, sender.address, 10**20)
    await sender.deposit(token, 10**20)
    return sender, recipient


async def _run(stack: Stack, clients: list[tuple[Client, Client]], payments_per_pair: int,
               seconds: float, *, swap: bool) -> dict[str, Any]:
    token = stack.deployment.test_token
    assert token is not None
    latencies: list[float] = []
    quote_latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def pay(sender: Client, recipient: Client) -> None:
        for _ in range(payments_per_pair):
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            if swap:
                quote = await sender.quote(token, ETH, AMOUNT)
                quote_latencies.append(time.perf_counter() - started)
                result = await sender.transfer(recipient.address, token, AMOUNT, quote=quote,
                                               wait=60)
            else:
                result = await sender.transfer(recipient.address, ETH, AMOUNT, wait=60)
            assert result.status == "completed", result
            latencies.append(time.perf_counter() - started)

    me = psutil.Process()
    node = psutil.Process(stack.node_pid) if stack.node_pid is not None else None
    node_before = _cpu(node) if node else 0.0
    cpu_before = _cpu(me) + node_before
    started = time.perf_counter()
    await asyncio.gather(*(pay(s, r) for s, r in clients))
    elapsed = time.perf_counter() - started
    node_after = _cpu(node) if node else 0.0
    total = len(latencies)
    run: dict[str, Any] = {
        "payments": total,
        "seconds": round(elapsed, 2),
        "payments_per_second": round(total / elapsed, 1),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "cpu_ms_per_payment": round((_cpu(me) + node_after - cpu_before) / total * 1000, 2),
        "node_cpu_ms_per_payment": round((node_after - node_before) / total * 1000, 3),
    }
    if quote_latencies:
        run["quote_latency_p50_ms"] = round(statistics.median(quote_latencies) * 1000, 2)
    return run
