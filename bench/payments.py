"""Routed payments per second through a real node, with latency and CPU per payment.

Starts anvil, nats-server and `connext node` (a separate process, SQLite in WAL mode: durable
storage), opens channels for N sender/recipient pairs, funds the senders, then has every
pair pay concurrently for a fixed number of payments. A payment counts when the sender's
transfer is resolved (both hops done). CPU per payment is the CPU time of the node process
plus this process (all clients), divided by the payments; its floor is what the signatures
of one payment cost: 4 updates x (2 signs + 2 recovers). The node's own share is reported
too, with what it did per payment, counted (connext.counters, read from its /metrics):
signatures made and checked, database transactions and statements, messages, and its CPU
over the cost of its own signatures.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from connext.chain.anvil import Anvil
from connext.client import Client
from connext.devstack import NatsServer
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from .crypto import measure_crypto
from .stack import running_stack

AMOUNT = 10**9
"""Wei per payment: the node's default minimum (`min_payment`)."""


async def _run_pairs(pairs: int, payments_per_pair: int, anvil: Anvil, nats: NatsServer,
                     deployment: Any, node_address: str, workdir: Path,
                     node_http_port: int) -> dict[str, Any]:
    clients: list[tuple[Client, Client]] = []
    for index in range(pairs):
        pair = []
        for role in ("sender", "recipient"):
            signer = Signer.random()
            anvil.set_balance(signer.address, 10**22)
            client = await Client.connect(
                signer, node_address=node_address, nats_url=nats.url, chain_url=anvil.url,
                database_url=f"sqlite:///{workdir / f'{role}-{pairs}-{index}.sqlite'}",
                deployment=deployment,
            )
            await client.setup()
            pair.append(client)
        await pair[0].deposit(ETH, 10**20)
        clients.append((pair[0], pair[1]))
    # one warm-up payment per pair collateralizes the recipients' channels
    await asyncio.gather(*(s.transfer(r.address, ETH, AMOUNT) for s, r in clients))

    latencies: list[float] = []

    async def pay(sender: Client, recipient: Client) -> None:
        for _ in range(payments_per_pair):
            started = time.perf_counter()
            result = await sender.transfer(recipient.address, ETH, AMOUNT, wait=60)
            assert result.status == "completed", result
            latencies.append(time.perf_counter() - started)

    me = psutil.Process()
    node = _node_process(node_address)
    node_cpu_before = _cpu(node) if node else 0.0
    cpu_before = _cpu(me) + node_cpu_before
    counts_before = _node_counts(node_http_port)
    started = time.perf_counter()
    await asyncio.gather(*(pay(s, r) for s, r in clients))
    elapsed = time.perf_counter() - started
    node_cpu_after = _cpu(node) if node else 0.0
    cpu_after = _cpu(me) + node_cpu_after
    counts = {k: v - counts_before.get(k, 0) for k, v in _node_counts(node_http_port).items()}
    for sender, recipient in clients:
        await sender.close()
        await recipient.close()
    total = pairs * payments_per_pair
    latencies.sort()
    return {
        "pairs": pairs,
        "payments": total,
        "seconds": round(elapsed, 2),
        "payments_per_second": round(total / elapsed, 1),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "cpu_ms_per_payment": round((cpu_after - cpu_before) / total * 1000, 2),
        "node_cpu_ms_per_payment": round((node_cpu_after - node_cpu_before) / total * 1000, 3),
        "node_per_payment": {
            "signatures_made": round(counts["signatures_made"] / total, 2),
            "signatures_checked": round(counts["signatures_checked"] / total, 2),
            "db_transactions": round((counts["db_reads"] + counts["db_writes"]) / total, 2),
            "db_write_transactions": round(counts["db_writes"] / total, 2),
            "db_statements": round(counts["db_statements"] / total, 2),
            "messages_sent": round(counts["messages_sent"] / total, 2),
            "messages_received": round(counts["messages_received"] / total, 2),
        },
    }


def _node_counts(port: int) -> dict[str, int]:
    """The node's connext_operations_total counters, from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    counts = {}
    for line in text.splitlines():
        if line.startswith('connext_operations_total{op="'):
            name, value = line[len('connext_operations_total{op="'):].split('"} ')
            counts[name] = int(float(value))
    return counts


_NODE_PIDS: dict[str, int] = {}


def _node_process(address: str) -> psutil.Process | None:
    pid = _NODE_PIDS.get(address)
    return None if pid is None else psutil.Process(pid)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def measure_payments(sizes: tuple[int, ...] = (1, 10, 50),
                     payments_per_pair: int | None = None) -> dict[str, Any]:
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    workdir = Path(tempfile.mkdtemp(prefix="connext-bench-"))
    with running_stack(workdir) as stack:
        if stack.node_pid is not None:
            _NODE_PIDS[stack.node_address] = stack.node_pid
        runs = []
        for pairs in sizes:
            per_pair = payments_per_pair or max(10, 500 // pairs)
            runs.append(asyncio.run(_run_pairs(pairs, per_pair, stack.anvil, stack.nats,
                                               stack.deployment, stack.node_address, workdir,
                                               stack.node_http_port)))
    crypto = measure_crypto(0.5)
    floor_ms = 4 * (2 * crypto["sign_us"] + 2 * crypto["recover_us"]) / 1000
    for run in runs:
        run["cpu_over_crypto_floor"] = round(run["cpu_ms_per_payment"] / floor_ms, 1)
        done = run["node_per_payment"]
        node_floor_ms = (done["signatures_made"] * crypto["sign_us"]
                         + done["signatures_checked"] * crypto["recover_us"]) / 1000
        run["node_signature_floor_ms"] = round(node_floor_ms, 3)
        run["node_cpu_over_its_signature_floor"] = round(
            run["node_cpu_ms_per_payment"] / node_floor_ms, 1) if node_floor_ms else None
    return {"runs": runs, "crypto_floor_ms_per_payment": round(floor_ms, 3)}


if __name__ == "__main__":
    import json

    print(json.dumps(measure_payments(), indent=2))
