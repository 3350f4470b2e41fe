"""Oracle payments through a real node, with the `connext oracle` service signing outcomes:
the recipient claims with the oracle's receipt; a receipt of another signer or for other
data is refused (by the recipient's client, and by the node when a client skips its own
check); an unclaimed one is refunded on both hops once it expires."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from connext.chain.anvil import Anvil
from connext.client import Client
from connext.devstack import free_port
from connext.oracle import ANVIL_DEV_KEY_2
from connext.protocol import errors
from connext.protocol.channel import resolve_update
from connext.protocol.encoding import receipt_digest
from connext.protocol.identifiers import forward_transfer_id
from connext.protocol.signing import Signer
from connext.protocol.transfers import SIGNED
from connext.protocol.types import ETH

from .conftest import CONNEXT, ClientFactory, NodeProcess
from .test_payments import ETHER, eventually

AMOUNT = ETHER // 20


@pytest.fixture
def oracle_url(anvil: Anvil, deployment_file: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "oracle.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CONNEXT, "oracle", "--port", str(port), "--chain-url", anvil.url,
             "--deployment-file", str(deployment_file)],
            env={**os.environ, "CONNEXT_ORACLE_KEY": ANVIL_DEV_KEY_2}, stdout=out,
            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while b"ready" not in log.read_bytes():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def receipt(oracle_url: str, payment_id: bytes, data: bytes) -> dict[str, str]:
    request = urllib.request.Request(
        f"{oracle_url}/receipts", method="POST",
        data=json.dumps({"paymentId": "0x" + payment_id.hex(),
                         "data": "0x" + data.hex()}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        answer: dict[str, str] = json.loads(reply.read())
    return answer


def test_an_oracle_payment_is_claimed_with_the_oracles_receipt_and_nothing_else(
    clients: ClientFactory, node: NodeProcess, oracle_url: str,
) -> None:
    async def scenario() -> None:
        payer, payee = await clients.connect(), await clients.connect()
        await payer.setup()
        await payee.setup()
        await payer.deposit(ETH, ETHER)
        with urllib.request.urlopen(oracle_url, timeout=10) as reply:
            oracle = json.loads(reply.read())["address"]
        payment_id, outcome = os.urandom(32), b"\x01" + bytes(31)  # "it happened"
        result = await payer.pay_on_oracle(payee.address, ETH, AMOUNT, oracle=oracle,
                                           oracle_payment_id=payment_id)
        forward = forward_transfer_id(result.routing_id)
        await eventually(lambda: _has(payee, forward))
        signed = receipt(oracle_url, payment_id, outcome)
        signature = bytes.fromhex(signed["signature"][2:])

        impostor = Signer.random().sign(receipt_digest(
            payee.network.chain_id, payee.definition_address["Signed"], payment_id, outcome))
        for data, sig in ((outcome, impostor), (b"\x02" + bytes(31), signature)):
            with pytest.raises(errors.InvalidTransferResolver):  # refused before sending
                await payee.claim_oracle_payment(forward, data, sig)
            # a client that skips its own check is refused by the node
            with pytest.raises(errors.InvalidTransferResolver):
                await payee.engine.propose(payee.channel_address, lambda s, _t, d=data,
                                           g=sig: resolve_update(
                                               s, payee.address, forward,
                                               SIGNED.encode_resolver(d, g)))
        assert await payee.balances() == {ETH: 0}

        await payee.claim_oracle_payment(forward, outcome, signature)
        assert await payee.balances() == {ETH: AMOUNT}
        await eventually(lambda: _status(payer, result.routing_id, "completed"))
        assert await payer.balances() == {ETH: ETHER - AMOUNT}
        await payer.close()
        await payee.close()

    asyncio.run(scenario())


def test_an_unclaimed_oracle_payment_is_refunded_on_both_hops_once_it_expired(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        payer, payee = await clients.connect(), await clients.connect()
        await payer.setup()
        await payee.setup()
        await payer.deposit(ETH, ETHER)
        result = await payer.pay_on_oracle(payee.address, ETH, AMOUNT,
                                           oracle=Signer.random().address,
                                           oracle_payment_id=os.urandom(32), timeout=12)
        forward = forward_transfer_id(result.routing_id)
        await eventually(lambda: _has(payee, forward))
        # the oracle never signs: once it expired, the payee cancels its hop and the
        # node refunds the payer
        await eventually(lambda: _status(payer, result.routing_id, "cancelled"), timeout=40)
        assert await payer.balances() == {ETH: ETHER}
        assert not await _has(payee, forward)
        assert await payee.balances() == {ETH: 0}
        for client in (payer, payee):
            # the payer commits the refund before the node does (it answers the node's
            # update first): the node's copy follows a moment later
            await eventually(lambda c=client: not node.channel(c.channel_address)[
                "activeTransfers"], timeout=5)
        await payer.close()
        await payee.close()

    asyncio.run(scenario())


async def _has(client: Client, transfer_id: bytes) -> bool:
    return transfer_id in await client.active_transfers()


async def _status(client: Client, routing_id: bytes, expected: str) -> bool:
    return await client.payment_status(routing_id=routing_id) == expected
