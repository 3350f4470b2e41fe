"""Integration fixtures: a real nats-server, the node as a real `connext node` process
(forked from one that imported the node already: tests/nodeproc.py), and clients in the
test's own event loop, all on free ports of the session's anvil.

Every process started here is stopped by pid at the end of its fixture.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connext.chain.anvil import Anvil
from connext.chain.deploy import Deployment, mint_test_token
from connext.client import Client
from connext.devstack import NatsServer, free_port
from connext.protocol.signing import Signer
from connext.store.testing import PostgresCluster

from ..nodeproc import NodeChild

CONNEXT = str(Path(sys.executable).parent / "connext")
NODE_KEY = "0x" + "4e" * 32
ADMIN_TOKEN = "test-admin-token"
REVEAL_DELTA = 5
"""The test node's forwards expire this many seconds before the sender's lock (tests pay
with timeouts of a few seconds); it registers preimages within REVEAL_MARGIN of expiry."""
REVEAL_MARGIN = 3


@dataclass
class NodeProcess:
    """A `connext node` child process; `restart()` keeps its database."""

    env: dict[str, str]
    log_path: Path
    address: str
    http_port: int
    process: NodeChild | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self, timeout: float = 60.0) -> NodeProcess:
        log = self.log_path.with_suffix(f".{len(self.logs)}.log")
        self.logs.append(log)
        log.write_bytes(b"")
        self.process = NodeChild(self.env, log)  # `connext node`, without the imports
        deadline = time.monotonic() + timeout
        while b"ready" not in log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("node did not start:\n" + log.read_text()[-4000:])
            time.sleep(0.05)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def channel(self, address: str) -> dict[str, Any]:
        """The node's view of a channel over its HTTP API (as its admin): state,
        latestUpdate, activeTransfers."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/channels/{address}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())


def node_env(anvil: Anvil, nats: NatsServer, deployment_file: Path, database_url: str,
             http_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "CONNEXT_NODE_KEY": NODE_KEY,
        "CONNEXT_NATS_URL": nats.url,
        "CONNEXT_CHAIN_URL": anvil.url,
        "CONNEXT_NODE_DATABASE_URL": database_url,
        "CONNEXT_DEPLOYMENT_FILE": str(deployment_file),
        "CONNEXT_NODE_PORT": str(http_port),
        "CONNEXT_ADMIN_TOKEN": ADMIN_TOKEN,
        "CONNEXT_REVEAL_DELTA": str(REVEAL_DELTA),
        "CONNEXT_REVEAL_MARGIN": str(REVEAL_MARGIN),
        "CONNEXT_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def node_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite by default; `@pytest.mark.parametrize("node_database_url", ["postgresql"],
    indirect=True)` runs the node on a fresh database of a throwaway PostgreSQL cluster."""
    if getattr(request, "param", "sqlite") == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        return cluster.create_database()
    return f"sqlite:///{tmp_path / 'node.sqlite'}"


@pytest.fixture
def node_extra_env() -> dict[str, str]:
    """Extra node environment; a test module overrides this fixture to configure the node."""
    return {}


@pytest.fixture
def node(anvil: Anvil, nats: NatsServer, deployment: Deployment, deployment_file: Path,
         node_database_url: str, tmp_path: Path,
         node_extra_env: dict[str, str]) -> Iterator[NodeProcess]:
    signer = Signer.from_hex(NODE_KEY)
    anvil.set_balance(signer.address, 10**24)
    assert deployment.test_token is not None
    mint_test_token(anvil.url, anvil.private_keys[0], deployment.test_token, signer.address,
                    10**27)
    http_port = free_port()
    process = NodeProcess(
        env={**node_env(anvil, nats, deployment_file, node_database_url, http_port),
             **node_extra_env},
        log_path=tmp_path / "node",
        address=signer.address,
        http_port=http_port,
    ).start()
    try:
        yield process
    finally:
        process.stop()


@dataclass
class ClientFactory:
    anvil: Anvil
    nats: NatsServer
    deployment: Deployment
    node: NodeProcess
    tmp_path: Path
    count: int = 0

    def signer(self) -> Signer:
        signer = Signer.random()
        self.anvil.set_balance(signer.address, 10**22)
        assert self.deployment.test_token is not None
        mint_test_token(self.anvil.url, self.anvil.private_keys[0], self.deployment.test_token,
                        signer.address, 10**24)
        return signer

    async def connect(self, signer: Signer | None = None, database: str | None = None) -> Client:
        self.count += 1
        signer = signer or self.signer()
        db = database or f"sqlite:///{self.tmp_path / f'client-{self.count}.sqlite'}"
        return await Client.connect(
            signer,
            node_address=self.node.address,
            nats_url=self.nats.url,
            chain_url=self.anvil.url,
            database_url=db,
            deployment=self.deployment,
        )


@pytest.fixture
def clients(anvil: Anvil, nats: NatsServer, deployment: Deployment, node: NodeProcess,
            tmp_path: Path) -> ClientFactory:
    return ClientFactory(anvil, nats, deployment, node, tmp_path)


Wait = Callable[[Callable[[], bool], float], None]
