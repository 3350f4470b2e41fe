"""Deposits: bob pays with plain transfers (even before the channel exists), alice through
the channel or the factory; the totals views say who deposited what."""

from __future__ import annotations

import pytest
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.types import BlockIdentifier, Wei

from connext.chain.channel import ChannelContract
from connext.protocol.types import ETH

from .helpers import ETHER, ChannelUnderTest, events, token_balance

pytestmark = pytest.mark.chain


def test_bob_deposits_eth_by_plain_transfers_before_and_after_deployment(
    channel: ChannelUnderTest,
) -> None:
    bob = channel.bob
    before = bob.sender.send_eth(channel.address, 2 * ETHER)
    assert before["gasUsed"] == 21_000  # nothing runs: the address has no code yet
    assert channel.contract.total_deposits_bob(ETH) == 2 * ETHER

    channel.deploy()
    bob.sender.send_eth(channel.address, 3 * ETHER)

    assert channel.contract.total_deposits_bob(ETH) == 5 * ETHER
    assert channel.contract.total_deposits_alice(ETH) == 0
    assert channel.contract.total_transferred(ETH) == 0


def test_bob_deposits_tokens_by_plain_transfers_before_and_after_deployment(
    channel: ChannelUnderTest, token: Contract
) -> None:
    bob = channel.bob
    bob.sender.transact(token.functions.mint(bob.address, 10 * ETHER))
    bob.sender.transact(token.functions.transfer(channel.address, 4 * ETHER))
    channel.deploy()
    bob.sender.transact(token.functions.transfer(channel.address, ETHER))

    assert channel.contract.total_deposits_bob(token.address) == 5 * ETHER
    assert channel.contract.total_deposits_alice(token.address) == 0
    assert channel.contract.total_deposits_bob(ETH) == 0


def test_alice_deposits_eth_and_tokens_through_the_channel(
    channel: ChannelUnderTest, token: Contract
) -> None:
    alice = channel.alice
    channel.deploy()
    channel.bob.sender.send_eth(channel.address, ETHER)
    eth_receipt = alice.sender.transact(channel.contract.deposit_alice(ETH, 2 * ETHER),
                                        value=2 * ETHER)
    alice.sender.transact(token.functions.mint(alice.address, 10 * ETHER))
    alice.sender.transact(token.functions.approve(channel.address, 3 * ETHER))
    alice.sender.transact(channel.contract.deposit_alice(token.address, 3 * ETHER))

    assert channel.contract.total_deposits_alice(ETH) == 2 * ETHER
    assert channel.contract.total_deposits_bob(ETH) == ETHER
    assert channel.contract.total_deposits_alice(token.address) == 3 * ETHER
    assert channel.contract.total_deposits_bob(token.address) == 0
    assert token_balance(token, channel.address) == 3 * ETHER
    deposited = events(channel.contract.contract.events.AliceDeposited, eth_receipt)
    assert deposited == [{"asset_id": ETH, "depositor": alice.address, "amount": 2 * ETHER}]


def test_create_channel_and_deposit_credits_alice_in_one_transaction(
    channel: ChannelUnderTest, token: Contract, factory: Contract
) -> None:
    alice, bob = channel.alice, channel.bob
    bob.sender.send_eth(channel.address, ETHER)  # counterfactual deposit by bob
    alice.sender.transact(
        factory.functions.create_channel_and_deposit(alice.address, bob.address, ETH, 2 * ETHER),
        value=2 * ETHER,
    )
    alice.sender.transact(token.functions.mint(alice.address, 10 * ETHER))
    alice.sender.transact(token.functions.approve(factory.address, 4 * ETHER))
    alice.sender.transact(
        factory.functions.create_channel_and_deposit(
            alice.address, bob.address, token.address, 4 * ETHER
        )
    )

    assert channel.contract.is_deployed()
    assert channel.contract.total_deposits_alice(ETH) == 2 * ETHER
    assert channel.contract.total_deposits_bob(ETH) == ETHER
    assert channel.contract.total_deposits_alice(token.address) == 4 * ETHER
    assert token_balance(token, channel.address) == 4 * ETHER
    assert token_balance(token, factory.address) == 0
    assert channel.w3.eth.get_balance(factory.address) == 0


def test_an_alice_deposit_must_bring_exactly_its_amount(
    channel: ChannelUnderTest, token: Contract, factory: Contract
) -> None:
    alice = channel.alice
    channel.deploy()
    with pytest.raises(ContractLogicError, match="wrong ETH value"):
        alice.sender.transact(channel.contract.deposit_alice(ETH, 2 * ETHER), value=ETHER)
    with pytest.raises(ContractLogicError, match="ETH sent with token"):
        alice.sender.transact(channel.contract.deposit_alice(token.address, 1), value=1)
    with pytest.raises(ContractLogicError):  # no allowance
        alice.sender.transact(channel.contract.deposit_alice(token.address, 1))
    with pytest.raises(ContractLogicError, match="wrong ETH value"):
        alice.sender.transact(
            factory.functions.create_channel_and_deposit(
                alice.address, channel.bob.address, ETH, ETHER
            ),
            value=1,
        )
    with pytest.raises(ContractLogicError, match="not a token"):
        alice.sender.transact(channel.contract.deposit_alice(alice.address, 1))
    assert channel.contract.total_deposits_alice(ETH) == 0


def test_a_call_to_a_function_the_channel_lacks_is_refused_not_swallowed(
    channel: ChannelUnderTest,
) -> None:
    channel.deploy()
    with pytest.raises(ContractLogicError, match="unknown function"):
        channel.bob.sender.send(
            {"to": channel.address, "value": Wei(1), "data": bytes.fromhex("12345678")}
        )
    assert channel.contract.total_deposits_bob(ETH) == 0


def test_deposit_totals_are_read_at_one_block_even_when_a_deposit_is_mined_meanwhile(
    channel: ChannelUnderTest, factory: Contract
) -> None:
    """Alice's first deposit deploys the channel. Mined between the reads of one totals
    query (deployed? then the balance), it used to show as "not deployed" beside a balance
    that held her deposit too: her amount counted as bob's, the node's deposit update
    claimed that, the user refused it, and the node (which signs one update per nonce)
    could never update that channel again. Every read now is at one block."""
    alice, bob = channel.alice, channel.bob
    bob.sender.send_eth(channel.address, ETHER)

    class MinedMeanwhile(ChannelContract):
        def is_deployed(self, block: BlockIdentifier = "latest") -> bool:
            answer = super().is_deployed(block)
            alice.sender.transact(  # mined right after the first read
                factory.functions.create_channel_and_deposit(alice.address, bob.address,
                                                             ETH, 2 * ETHER),
                value=2 * ETHER,
            )
            return answer

    raced = MinedMeanwhile(channel.w3, channel.address, alice.address, bob.address)
    assert raced.deposit_totals(ETH) == (0, ETHER)  # as it was before the deposit
    assert channel.contract.deposit_totals(ETH) == (2 * ETHER, ETHER)  # and after it
