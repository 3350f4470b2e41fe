"""Routed payments per second through a real node, with latency and CPU per payment.

Starts anvil, nats-server and `connext node` (a separate process; its store a SQLite file
unless bench/stores.py gives it another), opens channels for N sender/recipient pairs, funds
the senders, then has every pair pay concurrently until each pair made its payments or the
run's time is up. A payment counts when the sender's transfer is resolved (both hops done).
CPU per payment is the CPU time of the node process plus this process (all clients),
divided by the payments; its floor is what the signatures of one payment cost: 4 updates x
(2 signs + 2 recovers). The node's own share is reported too, with what it did per payment,
counted (connext.counters, read from its /metrics): signatures made and checked, database
transactions and statements, messages, and its CPU over the cost of its own signatures.
The clients' warnings (retries of a busy channel, say) go to clients.log in the work dir
and are counted. It reports; it never asserts.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import statistics
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from connext.client import Client
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from .crypto import measure_crypto
from .report import percentile
from .stack import Stack, bench_workdir, running_stack

AMOUNT = 10**9
"""Wei per payment: the node's default minimum (`min_payment`)."""
WARM_UP = 10**17
"""Wei of the first payment of each pair (the node collateralizes 11x that)."""
SIZES = (1, 10, 50)
SECONDS = 30.0
"""A run stops starting payments after this long, so a slow machine bounds `make bench`."""
SETUP_CONCURRENCY = 10
"""Pairs opening channels and depositing at once (the chain and the node take them all)."""


def measure_payments(sizes: tuple[int, ...] = SIZES, payments_per_pair: int | None = None,
                     seconds: float = SECONDS) -> dict[str, Any]:
    """One stack; a run per size, each pair paying `payments_per_pair` (default 500 per run
    in all) or until `seconds` are up."""
    with bench_workdir("connext-bench-") as workdir, running_stack(workdir) as stack:
        runs = [route_payments(stack, workdir / f"pairs-{pairs}", pairs,
                               payments_per_pair or max(10, 500 // pairs), seconds)
                for pairs in sizes]
    floors = signature_floors(runs)
    return {"runs": runs, "crypto_floor_ms_per_payment": floors["payment_floor_ms"],
            "seconds_per_run": seconds}


def route_payments(stack: Stack, workdir: Path, pairs: int, payments_per_pair: int,
                   seconds: float, database_cpu: Callable[[], float] | None = None
                   ) -> dict[str, Any]:
    """One run against a running stack. `database_cpu` reads the CPU seconds of a database
    server the node uses (PostgreSQL runs outside the node, SQLite inside)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    workdir.mkdir(parents=True, exist_ok=True)
    with _clients_log(workdir / "clients.log") as warnings:
        run = asyncio.run(_run_pairs(pairs, payments_per_pair, seconds, stack, workdir,
                                     database_cpu))
    run["client_warnings"] = warnings.count
    return run


async def open_pair(stack: Stack, workdir: Path, index: int) -> tuple[Client, Client]:
    """A sender with 100 ETH in its channel and a recipient, both set up with the node."""
    pair = []
    for role in ("sender", "recipient"):
        signer = Signer.random()
        stack.anvil.set_balance(signer.address, 10**22)
        client = await Client.connect(
            signer, node_address=stack.node_address, nats_url=stack.nats.url,
            chain_url=stack.anvil.url,
            database_url=f"sqlite:///{workdir / f'{role}-{index}.sqlite'}",
            deployment=stack.deployment,
        )
        await client.setup()
        pair.append(client)
    await pair[0].deposit(ETH, 10**20)
    return pair[0], pair[1]


async def _run_pairs(pairs: int, payments_per_pair: int, seconds: float, stack: Stack,
                     workdir: Path, database_cpu: Callable[[], float] | None
                     ) -> dict[str, Any]:
    setup_started = time.perf_counter()
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def gated_pair(index: int) -> tuple[Client, Client]:
        async with gate:
            return await open_pair(stack, workdir, index)

    clients = await asyncio.gather(*(gated_pair(index) for index in range(pairs)))
    settled_before = _node_counts(stack.node_http_port)["resolved"]
    # One warm-up payment per pair collateralizes the recipients' channels for the whole
    # run: the node deposits what a payment needs plus ten more like it, so a warm-up of
    # WARM_UP covers every AMOUNT after it (with AMOUNT alone the node would deposit on
    # chain every ten payments, and the bench would measure collateral, not routing).
    await asyncio.gather(*(s.transfer(r.address, ETH, WARM_UP) for s, r in clients))
    # the warm-up's last commits land before the counting starts, not inside it
    await _node_settled(stack.node_http_port, settled_before + pairs)
    setup_seconds = time.perf_counter() - setup_started

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def pay(sender: Client, recipient: Client) -> None:
        for _ in range(payments_per_pair):
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            result = await sender.transfer(recipient.address, ETH, AMOUNT, wait=60)
            assert result.status == "completed", result
            latencies.append(time.perf_counter() - started)

    me = psutil.Process()
    node = psutil.Process(stack.node_pid) if stack.node_pid is not None else None
    node_cpu_before = _cpu(node) if node else 0.0
    cpu_before = _cpu(me) + node_cpu_before
    database_cpu_before = database_cpu() if database_cpu else 0.0
    counts_before = _node_counts(stack.node_http_port)
    machine_before = psutil.cpu_times()
    started = time.perf_counter()
    await asyncio.gather(*(pay(s, r) for s, r in clients))
    elapsed = time.perf_counter() - started
    await _node_settled(stack.node_http_port, counts_before["resolved"] + len(latencies))
    steal = steal_percent(machine_before, psutil.cpu_times())
    node_cpu_after = _cpu(node) if node else 0.0
    cpu_after = _cpu(me) + node_cpu_after
    database_cpu_after = database_cpu() if database_cpu else 0.0
    counts = {k: v - counts_before.get(k, 0)
              for k, v in _node_counts(stack.node_http_port).items()}
    for sender, recipient in clients:
        await sender.close()
        await recipient.close()
    total = len(latencies)
    run: dict[str, Any] = {
        "pairs": pairs,
        "payments": total,
        "seconds": round(elapsed, 2),
        "setup_seconds": round(setup_seconds, 1),
        "payments_per_second": round(total / elapsed, 1),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "cpu_ms_per_payment": round((cpu_after - cpu_before) / total * 1000, 2),
        "node_cpu_ms_per_payment": round((node_cpu_after - node_cpu_before) / total * 1000, 3),
        "machine_cpu_steal_percent": steal,
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
    if "db_commits" in counts:  # a node that group-commits counts its COMMITs apart
        run["node_per_payment"]["db_commits"] = round(counts["db_commits"] / total, 2)
    if database_cpu:
        run["database_server_cpu_ms_per_payment"] = round(
            (database_cpu_after - database_cpu_before) / total * 1000, 3)
    return run


def signature_floors(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Adds to each run its CPU over the signature floor of a payment, and the node's CPU
    over the cost of the signatures it made and checked; returns the floors' basis."""
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
    return {"payment_floor_ms": round(floor_ms, 3), "sign_us": crypto["sign_us"],
            "recover_us": crypto["recover_us"]}


def _node_counts(port: int) -> dict[str, int]:
    """The node's connext_operations_total counters, from its /metrics, and (as
    `resolved`) the payments it has settled."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    counts = {"resolved": 0}
    for line in text.splitlines():
        if line.startswith('connext_operations_total{op="'):
            name, value = line[len('connext_operations_total{op="'):].split('"} ')
            counts[name] = int(float(value))
        elif line.startswith('connext_payments_total{status="resolved"}'):
            counts["resolved"] = int(float(line.rsplit(" ", 1)[1]))
    return counts


async def _node_settled(port: int, resolved: int) -> None:
    """Wait until the node has settled `resolved` payments in all: a sender's transfer
    completes once the sender stored the node's resolve, a moment before the node commits
    it, and the node's work for the run's last payments counts too."""
    deadline = time.perf_counter() + 30
    while _node_counts(port)["resolved"] < resolved and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)


def steal_percent(before: Any, after: Any) -> float | None:
    """The share of the machine's CPU time the hypervisor gave to others between two
    `psutil.cpu_times()` (None where the OS does not say). On a busy host it halves what the
    same code reaches, so a run's figures are read next to it."""
    if not hasattr(after, "steal"):
        return None
    spent = sum(after) - sum(before)
    return round(100 * (after.steal - before.steal) / spent, 1) if spent > 0 else 0.0


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class _Counting(logging.FileHandler):
    count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        super().emit(record)


@contextmanager
def _clients_log(path: Path) -> Iterator[_Counting]:
    """The clients' warnings go to `path` (not the table on the terminal), counted."""
    logger = logging.getLogger("connext")
    handler = _Counting(path)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        handler.close()


if __name__ == "__main__":
    import json

    print(json.dumps(measure_payments(), indent=2))
