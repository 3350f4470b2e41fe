"""Fixtures of the hostile-party tests: every test gets its own anvil chain (they move its
clock by days), the contracts deployed on it, the session's nats-server, the node as a
real `connext node` process (configured per test with `node_extra_env`), and clients.

Short windows make the attacks fit in seconds: the node forwards a lock REVEAL_DELTA
before the sender's expires and registers preimages within REVEAL_MARGIN of an expiry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connext.chain.anvil import Anvil, start_anvil
from connext.chain.deploy import Deployment, deploy, mint_test_token
from connext.devstack import NatsServer, free_port
from connext.protocol.signing import Signer

from ..integration.conftest import NODE_KEY, ClientFactory, NodeProcess, node_env

DAY = 86_400


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    chain = start_anvil()
    try:
        yield chain
    finally:
        chain.stop()


@pytest.fixture
def deployment_file(tmp_path: Path) -> Path:
    return tmp_path / "deployments.json"


@pytest.fixture
def deployment(anvil: Anvil, deployment_file: Path) -> Deployment:
    return deploy(anvil.url, anvil.private_keys[0], deployment_file=deployment_file)


@pytest.fixture
def node_extra_env() -> dict[str, str]:
    """Extra node environment; a test module overrides this fixture to configure it."""
    return {}


@pytest.fixture
def node(anvil: Anvil, nats: NatsServer, deployment: Deployment, deployment_file: Path,
         tmp_path: Path, node_extra_env: dict[str, str]) -> Iterator[NodeProcess]:
    signer = Signer.from_hex(NODE_KEY)
    anvil.set_balance(signer.address, 10**24)
    assert deployment.test_token is not None
    mint_test_token(anvil.url, anvil.private_keys[0], deployment.test_token, signer.address,
                    10**27)
    http_port = free_port()
    process = NodeProcess(
        env={**node_env(anvil, nats, deployment_file, f"sqlite:///{tmp_path / 'node.sqlite'}",
                        http_port),
             **node_extra_env},
        log_path=tmp_path / "node", address=signer.address, http_port=http_port,
    ).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def clients(anvil: Anvil, nats: NatsServer, deployment: Deployment, node: NodeProcess,
            tmp_path: Path) -> ClientFactory:
    return ClientFactory(anvil, nats, deployment, node, tmp_path)
