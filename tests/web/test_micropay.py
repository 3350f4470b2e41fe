"""The wallet's streams and oracle payments (app/micropay.py) against the session's real
stack: what the Streams and Oracle screens show comes from here."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import WebConfig
from app.micropay import MicroPayments
from app.wallets import WalletService
from connext.protocol.types import ETH
from tests.fullstack import FullStack

ETHER = 10**18


@pytest.fixture
def micro(full_stack: FullStack, tmp_path: Path) -> Iterator[MicroPayments]:
    config = WebConfig(
        data_dir=tmp_path, secret_key="micro-test", nats_url=full_stack.nats_url,
        chain_url=full_stack.chain_url, node_url=full_stack.node_url,
        deployment_file=full_stack.deployment_file, oracle_url=full_stack.oracle_url,
        faucet_key=full_stack.anvil.private_keys[0],
    )
    wallets = WalletService(config)
    yield MicroPayments(wallets)
    wallets.close()


def _until(check: object, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_stream_paid_in_the_background_counts_on_both_sides_and_settles(
        micro: MicroPayments) -> None:
    service = micro.service
    payer, payee = service.create_wallet(), service.create_wallet()
    payer_client = service.run(service.client(payer))
    payee_client = service.run(service.client(payee))
    service.faucet(payer, service.asset("ETH"), payer_client.channel_address)
    service.run(payer_client.reconcile_deposit(ETH))
    eth = service.asset("ETH")

    row = micro.open_stream(payer, payee.address, eth, ETHER // 10)
    assert (row.outgoing, row.budget, row.streamed, row.status) == (True, ETHER // 10, 0,
                                                                    "open")
    # streamed at once: the recipient's hop may still be on its way (a collateral deposit)
    micro.start_streaming(payer, bytes.fromhex(row.stream_id[2:]), 10**14, 300)
    _until(lambda: not micro.is_streaming(payer, row.stream_id), "the streaming never ended")
    [out] = [r for r in micro.streams(payer) if r.stream_id == row.stream_id]
    assert out.problem is None
    assert (out.vouchers, out.streamed, out.left) == (300, 300 * 10**14, ETHER // 10 - 3 * 10**16)
    _until(lambda: any(r.stream_id == row.stream_id and r.streamed == 300 * 10**14
                       for r in micro.streams(payee)), "the payee never counted the vouchers")
    [incoming] = [r for r in micro.streams(payee) if r.stream_id == row.stream_id]
    assert (incoming.outgoing, incoming.vouchers, incoming.counterparty) == (
        False, 300, payer.address)

    assert micro.close_stream(payee, bytes.fromhex(row.stream_id[2:])) == "completed"
    _until(lambda: service.run(payer_client.balances()).get(ETH) == ETHER - 3 * 10**16,
           "the rest of the budget did not come back to the payer")
    assert service.run(payee_client.balances()).get(ETH) == 3 * 10**16
    _until(lambda: any(r.stream_id == row.stream_id and r.status == "completed"
                       for r in micro.streams(payer)), "the payer's screen never saw it end")
