"""Clients of idle wallets are closed (no connection or file kept per visitor forever) and
come back on next use, with what arrived meanwhile: against the session's real stack."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import WebConfig
from app.wallets import WalletService
from connext.protocol.types import ETH
from tests.fullstack import FullStack

ETHER = 10**18


@pytest.fixture
def service(full_stack: FullStack, tmp_path: Path) -> Iterator[WalletService]:
    config = WebConfig(
        data_dir=tmp_path, secret_key="idle-test", nats_url=full_stack.nats_url,
        chain_url=full_stack.chain_url, node_url=full_stack.node_url,
        deployment_file=full_stack.deployment_file,
        faucet_key=full_stack.anvil.private_keys[0], idle_seconds=60,
    )
    wallets = WalletService(config)
    yield wallets
    wallets.close()


def test_an_idle_wallet_is_closed_and_gets_its_payment_when_it_comes_back(
        service: WalletService) -> None:
    payer, payee = service.create_wallet(), service.create_wallet()
    payer_client = service.run(service.client(payer))
    service.run(service.client(payee))
    service.faucet(payer, service.asset("ETH"), payer_client.channel_address)
    service.run(payer_client.reconcile_deposit(ETH))

    # a browser still watching the payer keeps it; the payee is idle and unwatched
    service.watchers[payer.address] = 1
    later = time.monotonic() + 3600
    assert service.run(service.close_idle(now=later)) == [payee.address]
    assert service.connected(payer.address) and not service.connected(payee.address)

    # paying the offline payee: the node keeps the payment until the payee is back
    result = service.run(payer_client.transfer(payee.address, ETH, ETHER // 4, wait=2.0))
    assert result.status == "pending"

    back = service.run(service.client(payee))  # the next page view reconnects it
    deadline = time.monotonic() + 30
    while service.run(back.balances()).get(ETH, 0) != ETHER // 4:
        assert time.monotonic() < deadline, "the payment did not arrive after reconnecting"
        time.sleep(0.2)
    assert service.run(payer_client.balances())[ETH] == ETHER - ETHER // 4
