"""Cooperative withdrawals: a commitment signed by both parties pays once, and only that."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from connext.chain.channel import WithdrawCommitment
from connext.protocol.types import ETH

from .helpers import (
    ETHER,
    ChannelUnderTest,
    Party,
    eth_balance,
    events,
    high_s_twin,
    token_balance,
)

pytestmark = pytest.mark.chain


def _fund(channel: ChannelUnderTest, token: Contract) -> None:
    alice, bob = channel.alice, channel.bob
    channel.deploy()
    alice.sender.transact(channel.contract.deposit_alice(ETH, 5 * ETHER), value=5 * ETHER)
    bob.sender.send_eth(channel.address, 5 * ETHER)
    bob.sender.transact(token.functions.mint(channel.address, 10 * ETHER))


def test_withdraw_pays_eth_once_and_counts_it_as_transferred(
    channel: ChannelUnderTest, token: Contract, make_party: Callable[[], Party]
) -> None:
    _fund(channel, token)
    recipient = make_party().address
    commitment = WithdrawCommitment(recipient, ETH, 3 * ETHER, nonce=1)
    signatures = channel.sign_commitment(commitment)
    before = eth_balance(channel.w3, recipient)

    receipt = channel.bob.sender.transact(channel.contract.withdraw(commitment, *signatures))

    assert eth_balance(channel.w3, recipient) == before + 3 * ETHER
    assert eth_balance(channel.w3, channel.address) == 7 * ETHER
    assert channel.contract.total_transferred(ETH) == 3 * ETHER
    # deposits are totals: a withdrawal does not change them
    assert channel.contract.total_deposits_alice(ETH) == 5 * ETHER
    assert channel.contract.total_deposits_bob(ETH) == 5 * ETHER
    assert channel.contract.withdrawal_used(1)
    assert events(channel.contract.contract.events.Withdrawn, receipt) == [
        {"recipient": recipient, "asset_id": ETH, "amount": 3 * ETHER, "nonce": 1}
    ]

    with pytest.raises(ContractLogicError, match="commitment already used"):
        channel.alice.sender.transact(channel.contract.withdraw(commitment, *signatures))
    assert eth_balance(channel.w3, recipient) == before + 3 * ETHER


def test_withdraw_pays_tokens_once(
    channel: ChannelUnderTest, token: Contract, make_party: Callable[[], Party]
) -> None:
    _fund(channel, token)
    recipient = make_party().address
    commitment = WithdrawCommitment(recipient, token.address, 4 * ETHER, nonce=7)
    signatures = channel.sign_commitment(commitment)

    channel.alice.sender.transact(channel.contract.withdraw(commitment, *signatures))

    assert token_balance(token, recipient) == 4 * ETHER
    assert channel.contract.total_transferred(token.address) == 4 * ETHER
    assert channel.contract.total_deposits_bob(token.address) == 10 * ETHER
    with pytest.raises(ContractLogicError, match="commitment already used"):
        channel.alice.sender.transact(channel.contract.withdraw(commitment, *signatures))
    assert token_balance(token, recipient) == 4 * ETHER


def test_each_nonce_pays_independently_across_bitmap_words(
    channel: ChannelUnderTest, token: Contract
) -> None:
    _fund(channel, token)
    bob = channel.bob.address
    for nonce in (255, 256, 2**200):
        commitment = WithdrawCommitment(bob, ETH, ETHER, nonce)
        channel.bob.sender.transact(
            channel.contract.withdraw(commitment, *channel.sign_commitment(commitment))
        )
    assert channel.contract.total_transferred(ETH) == 3 * ETHER
    assert [channel.contract.withdrawal_used(n) for n in (254, 255, 256, 257, 2**200)] == [
        False, True, True, False, True
    ]


def test_withdraw_rejects_every_signature_that_is_not_both_parties_on_this_commitment(
    channel: ChannelUnderTest, token: Contract, make_party: Callable[[], Party]
) -> None:
    _fund(channel, token)
    commitment = WithdrawCommitment(channel.bob.address, ETH, ETHER, nonce=1)
    sig_alice, sig_bob = channel.sign_commitment(commitment)
    stranger = ChannelUnderTest(make_party(), channel.bob, channel.deployment, channel.w3)
    stranger_alice, _ = stranger.sign_commitment(commitment)  # other channel's domain too
    more = replace(commitment, amount=2 * ETHER)
    flipped = bytearray(sig_bob)
    flipped[10] ^= 1
    bad = {
        "swapped": (sig_bob, sig_alice),
        "stranger for alice": (stranger_alice, sig_bob),
        "bob twice": (sig_bob, sig_bob),
        "flipped byte": (sig_alice, bytes(flipped)),
        "high s": (high_s_twin(sig_alice), sig_bob),
        "v = 29": (sig_alice, sig_bob[:64] + bytes((29,))),
        "short": (sig_alice, sig_bob[:64]),
        "empty": (sig_alice, b""),
    }
    accepted = []
    for case, (a, b) in bad.items():
        try:
            channel.bob.sender.transact(channel.contract.withdraw(commitment, a, b))
            accepted.append(case)
        except ContractLogicError as exc:
            assert "signature" in str(exc), (case, exc)
    assert accepted == []
    with pytest.raises(ContractLogicError, match="bad alice signature"):
        channel.bob.sender.transact(channel.contract.withdraw(more, sig_alice, sig_bob))

    assert channel.contract.total_transferred(ETH) == 0
    assert not channel.contract.withdrawal_used(1)


def test_factory_deploys_a_counterfactual_channel_and_withdraws_in_one_transaction(
    channel: ChannelUnderTest, factory: Contract
) -> None:
    channel.bob.sender.send_eth(channel.address, 2 * ETHER)
    recipient = channel.bob.address
    commitment = WithdrawCommitment(recipient, ETH, 2 * ETHER, nonce=3)
    before = eth_balance(channel.w3, recipient)

    receipt = channel.alice.sender.transact(
        factory.functions.create_channel_and_withdraw(
            channel.alice.address, channel.bob.address, commitment.as_tuple(),
            *channel.sign_commitment(commitment),
        )
    )

    assert len(events(factory.events.ChannelCreated, receipt)) == 1
    assert eth_balance(channel.w3, recipient) == before + 2 * ETHER  # alice paid the gas
    assert channel.contract.total_deposits_bob(ETH) == 2 * ETHER
    assert channel.contract.withdrawal_used(3)
