"""The anvil wrapper: a chain on a free port, its dev keys, time travel, a clean stop."""

from __future__ import annotations

import os

import pytest
from eth_account import Account

from connext.chain.anvil import Anvil, AnvilError

pytestmark = pytest.mark.chain


def test_anvil_starts_on_a_free_port_travels_in_time_and_stops_by_pid() -> None:
    chain = Anvil(chain_id=1337, accounts=2).start()
    try:
        assert chain.rpc("eth_chainId") == hex(1337)
        assert len(chain.accounts) == 2
        for account in chain.accounts:
            assert Account.from_key(account.private_key).address == account.address
            assert int(chain.rpc("eth_getBalance", [account.address, "latest"]), 16) > 0

        start = chain.block_timestamp()
        snapshot = chain.snapshot()
        chain.increase_time(3600)
        chain.mine()
        assert chain.block_timestamp() >= start + 3600
        chain.set_next_block_timestamp(start + 10 * 86_400)
        chain.mine()
        assert chain.block_timestamp() == start + 10 * 86_400
        chain.revert(snapshot)
        assert chain.block_timestamp() == start
        with pytest.raises(AnvilError):
            chain.rpc("no_such_method")
        pid = chain.pid
    finally:
        chain.stop()
    assert not chain.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
