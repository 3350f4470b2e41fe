"""Contract-test fixtures on the session's anvil: every test runs inside a chain snapshot.

The deployment is made before the first snapshot, so reverting a test's changes keeps it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from web3 import Web3
from web3.contract import Contract

from connext.chain.anvil import Anvil
from connext.chain.contracts import contract
from connext.chain.deploy import Deployment

from .helpers import ChannelUnderTest, Party, new_party


@pytest.fixture(autouse=True)
def isolated_chain(anvil: Anvil, deployment: Deployment) -> Iterator[None]:
    snapshot = anvil.snapshot()
    try:
        yield
    finally:
        anvil.revert(snapshot)


@pytest.fixture
def make_party(anvil: Anvil, w3: Web3) -> Callable[[], Party]:
    return lambda: new_party(anvil, w3)


@pytest.fixture
def channel(make_party: Callable[[], Party], deployment: Deployment,
            w3: Web3) -> ChannelUnderTest:
    """A channel between two fresh, funded parties; not deployed yet."""
    return ChannelUnderTest(make_party(), make_party(), deployment, w3)


@pytest.fixture
def token(w3: Web3, deployment: Deployment) -> Contract:
    assert deployment.test_token is not None
    return contract(w3, "TestToken", deployment.test_token)


@pytest.fixture
def factory(w3: Web3, deployment: Deployment) -> Contract:
    return contract(w3, "ChannelFactory", deployment.channel_factory)
