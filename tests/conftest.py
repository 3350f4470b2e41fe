"""Shared fixtures: one real anvil chain per test session, with the contracts deployed.

The chain runs on a free port and is stopped by pid when the session ends. Tests that
change chain state isolate themselves with snapshots (see tests/contracts/conftest.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from connext.chain.anvil import Anvil, start_anvil
from connext.chain.contracts import connect
from connext.chain.deploy import Deployment, deploy
from connext.devstack import NatsServer
from connext.protocol.signing import Signer
from connext.store.testing import PostgresCluster, unavailable_reason
from tests.fullstack import FullStack

TEST_NODE_KEYS = ("0x" + "4e" * 32, "0x" + "5a" * 32, "0x" + "6b" * 32, "0x" + "7c" * 32)
"""The keys of every node the tests start on the session's nats-server (integration's
NODE_KEY, the hostile nodes of tests/adversarial); another node's subjects are refused."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last: fast failures show first, and Playwright's event loop never
    shares the session with the asyncio tests that come after it."""
    items.sort(key=lambda item: "/e2e/" in str(item.path).replace("\\", "/"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test that used the full stack carries the stack's warnings and errors of
    the last minutes in its report (CI keeps nothing else of the stack's logs)."""
    report = yield
    running = getattr(item, "funcargs", {}).get("full_stack")
    if report.failed and isinstance(running, FullStack):
        for path in (running.node_log, running.web_log):
            text = path.read_text(errors="replace") if path.exists() else ""
            lines = [line for line in text.splitlines()
                     if " WARNING " in line or " ERROR " in line or "stopped" in line]
            report.sections.append((path.name, "\n".join(lines[-60:])))
    return report


@pytest.fixture(scope="session")
def full_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullStack]:
    """The whole stack (anvil, nats-server, node, `connext web`) on free ports, started once
    for the session by the first test that needs it (API, wallet and browser tests)."""
    with FullStack(tmp_path_factory.mktemp("stack")) as running:
        try:
            yield running
        finally:
            if os.environ.get("CONNEXT_STACK_LOGS") == "1":
                print(running.logs())


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL 15 cluster for the session (skipped where the server
    binaries are absent); tests create their own databases in it."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def nats() -> Iterator[NatsServer]:
    """One real nats-server for the session, on a free port, with authorization on: the
    auth service grants node permissions to the nodes the tests run (TEST_NODE_KEYS)."""
    server = NatsServer(nodes=[Signer.from_hex(k).address for k in TEST_NODE_KEYS]).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    chain = start_anvil()
    try:
        yield chain
    finally:
        chain.stop()


@pytest.fixture(scope="session")
def w3(anvil: Anvil) -> Web3:
    return connect(anvil.url)


@pytest.fixture(scope="session")
def deployment_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chain") / "deployments.json"


@pytest.fixture(scope="session")
def deployment(anvil: Anvil, deployment_file: Path) -> Deployment:
    return deploy(anvil.url, anvil.private_keys[0], deployment_file=deployment_file)
