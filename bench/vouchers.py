"""Stream vouchers per second end to end, for one stream and for many concurrent ones.

Payers and recipients are real clients of a real node (anvil, nats-server, `connext node`),
in two separate OS processes (multiprocessing spawn) so both cores work: the payers' process
opens one stream per pair and keeps `IN_FLIGHT_PER_STREAM` calls of `OutgoingStream.pay`
waiting per stream; each voucher is signed by the payer, sent over NATS (batched), checked
by the recipient (signer, order, budget), stored by it, and acknowledged. A voucher counts
when its `pay` returns. CPU per voucher is the CPU time of both processes over the run
divided by the vouchers; its floor is 1 sign + 1 recover (as `bench/crypto.py` measures).
It reports; it never asserts.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

from connext.chain.deploy import Deployment
from connext.client import Client
from connext.client.streams import MAX_BATCH, OutgoingStream
from connext.protocol import errors
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from .crypto import measure_crypto
from .stack import Stack, bench_workdir, running_stack

STREAM_COUNTS = (1, 20)
SECONDS = 6.0
"""How long the payers keep paying in each run."""
IN_FLIGHT_PER_STREAM = 4 * MAX_BATCH
"""`pay` calls waiting for their acknowledgement at any time, per stream."""
PRICE = 1
"""Wei per voucher."""
BUDGET = 10**15
"""Wei locked per stream (far more than a run pays)."""
WORKER_TIMEOUT = 300.0


def measure_vouchers(stream_counts: tuple[int, ...] = STREAM_COUNTS,
                     seconds: float = SECONDS) -> dict[str, Any]:
    with bench_workdir("connext-bench-vouchers-") as workdir, running_stack(workdir) as stack:
        runs = [_run(streams, stack, workdir / f"streams-{streams}", seconds)
                for streams in stream_counts]
    crypto = measure_crypto(0.5)
    floor_us = crypto["sign_us"] + crypto["recover_us"]
    for run in runs:
        run["cpu_over_crypto_floor"] = round(run["cpu_us_per_voucher"] / floor_us, 2)
    return {"runs": runs, "crypto_floor_us_per_voucher": round(floor_us, 1),
            "in_flight_per_stream": IN_FLIGHT_PER_STREAM, "max_batch": MAX_BATCH}


def _run(streams: int, stack: Stack, workdir: Path, seconds: float) -> dict[str, Any]:
    workdir.mkdir(parents=True)
    payer_keys = [Signer.random() for _ in range(streams)]
    recipient_keys = [Signer.random() for _ in range(streams)]
    for signer in payer_keys:
        stack.anvil.set_balance(signer.address, 10**22)
    config = {"nats_url": stack.nats.url, "chain_url": stack.anvil.url,
              "node_address": stack.node_address, "deployment": stack.deployment.to_json(),
              "workdir": str(workdir)}
    spawn = multiprocessing.get_context("spawn")
    to_recipients, recipients_end = spawn.Pipe()
    to_payers, payers_end = spawn.Pipe()
    recipients = spawn.Process(target=_recipients_process, name="bench-recipients", args=(
        recipients_end, config, [s.private_key for s in recipient_keys]))
    payers = spawn.Process(target=_payers_process, name="bench-payers", args=(
        payers_end, config, [s.private_key for s in payer_keys],
        [s.address for s in recipient_keys], seconds))
    recipients.start()
    try:
        _expect(to_recipients, "ready")
        payers.start()
        stream_ids = _expect(to_payers, "ready")
        measured = [psutil.Process(p.pid) for p in (payers, recipients) if p.pid is not None]
        nats = psutil.Process(stack.nats.pid) if stack.nats.pid is not None else None
        before = [_cpu(p) for p in measured]
        nats_before = _cpu(nats) if nats else 0.0
        to_payers.send(("go", None))
        paid = _expect(to_payers, "done")
        after = [_cpu(p) for p in measured]
        nats_after = _cpu(nats) if nats else 0.0
        to_recipients.send(("stop", stream_ids))
        stored = _expect(to_recipients, "stored")
        to_payers.send(("stop", None))
        _expect(to_payers, "closed")
    finally:
        for process in (payers, recipients):
            if process.pid is not None:
                process.join(timeout=30)
                if process.is_alive():
                    process.terminate()
    count = paid["vouchers"]
    payer_cpu, recipient_cpu = (a - b for a, b in zip(after, before, strict=True))
    return {
        "streams": streams,
        "vouchers": count,
        "seconds": round(paid["seconds"], 2),
        "vouchers_per_second": round(count / paid["seconds"], 1),
        "cpu_us_per_voucher": round((payer_cpu + recipient_cpu) / count * 1e6, 1),
        "payer_cpu_us_per_voucher": round(payer_cpu / count * 1e6, 1),
        "recipient_cpu_us_per_voucher": round(recipient_cpu / count * 1e6, 1),
        "nats_cpu_us_per_voucher": round((nats_after - nats_before) / count * 1e6, 1),
        "latency_p50_ms": paid["latency_p50_ms"],
        "latency_p99_ms": paid["latency_p99_ms"],
        # what the recipients stored is what the payers were acknowledged, stream by stream
        "stored_equals_acknowledged": stored == paid["acknowledged"],
    }


def _expect(conn: Connection, what: str) -> Any:
    if not conn.poll(WORKER_TIMEOUT):
        raise RuntimeError(f"a benchmark worker did not say {what!r} in {WORKER_TIMEOUT} s")
    said, value = conn.recv()
    if said != what:
        raise RuntimeError(f"a benchmark worker said {said!r} ({value}), not {what!r}")
    return value


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


# --- the worker processes ------------------------------------------------------------------


async def _client(config: dict[str, Any], key: bytes, name: str) -> Client:
    return await Client.connect(
        Signer(key), node_address=config["node_address"], nats_url=config["nats_url"],
        chain_url=config["chain_url"],
        database_url=f"sqlite:///{Path(config['workdir']) / f'{name}.sqlite'}",
        deployment=Deployment.from_json(config["deployment"]), request_timeout=60.0)


async def _receive(conn: Connection) -> tuple[str, Any]:
    said: tuple[str, Any] = await asyncio.to_thread(conn.recv)
    return said


def _recipients_process(conn: Connection, config: dict[str, Any], keys: list[bytes]) -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(_recipients(conn, config, keys))
    except BaseException as exc:
        conn.send(("failed", repr(exc)))
        raise


async def _recipients(conn: Connection, config: dict[str, Any], keys: list[bytes]) -> None:
    clients = await asyncio.gather(*(_client(config, key, f"recipient-{index}")
                                     for index, key in enumerate(keys)))
    await asyncio.gather(*(client.setup() for client in clients))
    conn.send(("ready", [client.address for client in clients]))
    _said, stream_ids = await _receive(conn)  # stop: what did we store?
    stored = []
    for client, stream_id in zip(clients, stream_ids, strict=True):
        saved = await asyncio.to_thread(client.store.voucher, stream_id)
        stored.append(0 if saved is None else saved[0])
    for client in clients:
        await client.close()
    conn.send(("stored", stored))


def _payers_process(conn: Connection, config: dict[str, Any], keys: list[bytes],
                    recipients: list[str], seconds: float) -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(_payers(conn, config, keys, recipients, seconds))
    except BaseException as exc:
        conn.send(("failed", repr(exc)))
        raise


async def _payers(conn: Connection, config: dict[str, Any], keys: list[bytes],
                  recipients: list[str], seconds: float) -> None:
    clients = await asyncio.gather(*(_client(config, key, f"payer-{index}")
                                     for index, key in enumerate(keys)))
    await asyncio.gather(*(client.setup() for client in clients))
    await asyncio.gather(*(client.deposit(ETH, 2 * BUDGET) for client in clients))
    streams = await asyncio.gather(*(_open(client, recipient)
                                     for client, recipient in zip(clients, recipients,
                                                                  strict=True)))
    conn.send(("ready", [stream.stream_id for stream in streams]))
    await _receive(conn)  # go

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def lane(stream: OutgoingStream) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await stream.pay(PRICE)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(lane(stream) for stream in streams
                           for _ in range(IN_FLIGHT_PER_STREAM)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    conn.send(("done", {
        "vouchers": len(latencies),
        "seconds": elapsed,
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "acknowledged": [stream.acknowledged for stream in streams],
    }))
    await _receive(conn)  # stop
    for client in clients:
        await client.close()
    conn.send(("closed", None))


async def _open(payer: Client, recipient: str) -> OutgoingStream:
    """A stream to `recipient`, once its first voucher was accepted (the node forwards the
    stream to the recipient just after our hop is locked)."""
    stream = await payer.streams.open(recipient, ETH, BUDGET)
    for _ in range(200):
        try:
            await stream.pay(PRICE)
            return stream
        except errors.UnknownStream:
            await asyncio.sleep(0.1)
    raise RuntimeError("the recipient never saw the stream")


if __name__ == "__main__":
    import json

    print(json.dumps(measure_vouchers(), indent=2))
