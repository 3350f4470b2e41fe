"""Unilateral exit: dispute the latest state, defund after the consensus window, dispute
and settle active transfers, exit. Time moves with anvil's clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from connext.chain.anvil import Anvil
from connext.chain.channel import dispute_hash
from connext.protocol.encoding import channel_state_struct_hash
from connext.protocol.types import ETH, ChannelState, TransferBalance

from .helpers import (
    ETHER,
    ChannelUnderTest,
    HashlockTransfer,
    Party,
    eth_balance,
    events,
    paid_gas,
    proof_for,
    token_balance,
)

pytestmark = pytest.mark.chain

TIMEOUT = 3600
DAY = 86_400


@dataclass
class Disputable:
    """A funded channel and its latest states: alice 10 and bob 5 ETH deposited, two
    hashlock transfers active (alice -> bob 3, bob -> alice 2), then bob deposited 1 more
    ETH that no state has processed."""

    channel: ChannelUnderTest
    to_bob: HashlockTransfer
    to_alice: HashlockTransfer
    states: dict[int, ChannelState]

    @property
    def transfers(self) -> list[HashlockTransfer]:
        return [self.to_bob, self.to_alice]


@pytest.fixture
def disputable(channel: ChannelUnderTest) -> Disputable:
    alice, bob = channel.alice, channel.bob
    channel.deploy()
    alice.sender.transact(channel.contract.deposit_alice(ETH, 10 * ETHER), value=10 * ETHER)
    bob.sender.send_eth(channel.address, 5 * ETHER)
    to_bob = channel.hashlock(alice, 3 * ETHER)
    to_alice = channel.hashlock(bob, 2 * ETHER, transfer_timeout=600)
    transfers = [to_bob, to_alice]

    def state(nonce: int, balances: tuple[int, int], defund_nonce: int = 1) -> ChannelState:
        return channel.state(
            nonce=nonce, balances=[balances], processed_a=[10 * ETHER],
            processed_b=[5 * ETHER], defund_nonces=[defund_nonce], timeout=TIMEOUT,
            transfers=transfers,
        )

    states = {
        4: state(4, (6 * ETHER, 4 * ETHER)),
        5: state(5, (7 * ETHER, 3 * ETHER)),
        6: state(6, (8 * ETHER, 2 * ETHER)),
        7: state(7, (5 * ETHER, 5 * ETHER)),
        8: state(8, (4 * ETHER, 6 * ETHER), defund_nonce=2),
    }
    bob.sender.send_eth(channel.address, ETHER)  # unprocessed
    return Disputable(channel, to_bob, to_alice, states)


def _travel(anvil: Anvil, seconds: int) -> None:
    anvil.increase_time(seconds)
    anvil.mine()


def test_a_higher_nonce_replaces_the_disputed_state_within_the_window(
    disputable: Disputable, anvil: Anvil
) -> None:
    channel, states = disputable.channel, disputable.states
    receipt = channel.dispute(states[5])
    opened = anvil.block_timestamp()
    record = channel.contract.channel_dispute()
    assert (record.nonce, record.consensus_expiry) == (5, opened + TIMEOUT)
    assert record.dispute_hash == dispute_hash(states[5])
    assert events(channel.contract.contract.events.ChannelDisputed, receipt) == [{
        "disputer": channel.bob.address, "nonce": 5,
        "state_hash": channel_state_struct_hash(states[5]),
        "merkle_root": states[5].merkle_root, "consensus_expiry": opened + TIMEOUT,
    }]

    _travel(anvil, 600)
    channel.dispute(states[6], by=channel.alice)

    record = channel.contract.channel_dispute()
    assert (record.nonce, record.consensus_expiry) == (6, opened + TIMEOUT)  # not extended
    for stale in (states[4], states[6]):
        with pytest.raises(ContractLogicError, match="stale nonce"):
            channel.dispute(stale)
    assert channel.contract.channel_dispute().nonce == 6


def test_nothing_can_be_defunded_or_disputed_before_the_window_ends(
    disputable: Disputable, anvil: Anvil
) -> None:
    channel, state = disputable.channel, disputable.states[5]
    channel.dispute(state)
    _travel(anvil, TIMEOUT - 10)
    with pytest.raises(ContractLogicError, match="consensus window open"):
        channel.bob.sender.transact(channel.contract.defund_channel(state, [ETH]))
    with pytest.raises(ContractLogicError, match="consensus window open"):
        channel.bob.sender.transact(
            channel.contract.dispute_transfer(
                disputable.to_bob.core, proof_for(disputable.transfers, disputable.to_bob), state
            )
        )


def test_defund_credits_balances_plus_unprocessed_deposits_once(
    disputable: Disputable, anvil: Anvil
) -> None:
    channel, states = disputable.channel, disputable.states
    alice, bob = channel.alice.address, channel.bob.address
    channel.dispute(states[5])
    _travel(anvil, TIMEOUT)
    with pytest.raises(ContractLogicError, match="not the disputed state"):
        channel.bob.sender.transact(channel.contract.defund_channel(states[4], [ETH]))

    receipt = channel.bob.sender.transact(channel.contract.defund_channel(states[5], [ETH]))

    # alice: balance 7, all her deposits processed; bob: balance 3 + 1 unprocessed
    assert channel.contract.exitable(ETH, alice) == 7 * ETHER
    assert channel.contract.exitable(ETH, bob) == 4 * ETHER
    assert channel.contract.defund_nonce(ETH) == 1
    assert events(channel.contract.contract.events.ChannelDefunded, receipt) == [
        {"asset_id": ETH, "defund_nonce": 1, "to_alice": 7 * ETHER, "to_bob": 4 * ETHER}
    ]
    with pytest.raises(ContractLogicError, match="already defunded"):
        channel.alice.sender.transact(channel.contract.defund_channel(states[5], [ETH]))
    assert channel.contract.exitable(ETH, bob) == 4 * ETHER


def test_full_unilateral_exit_pays_everyone_exactly_what_the_state_says(
    disputable: Disputable, anvil: Anvil, make_party: Callable[[], Party]
) -> None:
    channel, state = disputable.channel, disputable.states[5]
    alice, bob = channel.alice, channel.bob
    to_bob, to_alice = disputable.to_bob, disputable.to_alice
    contract = channel.contract
    relayer = make_party()
    channel.dispute(state)
    _travel(anvil, TIMEOUT)
    bob.sender.transact(contract.defund_channel(state, [ETH]))

    # transfer alice -> bob: bob proves it and resolves it with the preimage
    bob.sender.transact(contract.dispute_transfer(to_bob.core, proof_for(disputable.transfers,
                                                                         to_bob), state))
    with pytest.raises(ContractLogicError, match="already disputed"):
        bob.sender.transact(contract.dispute_transfer(
            to_bob.core, proof_for(disputable.transfers, to_bob), state))
    receipt = bob.sender.transact(contract.defund_transfer(to_bob.core, to_bob.initial_state,
                                                           to_bob.resolver))
    assert events(contract.contract.events.TransferDefunded, receipt) == [{
        "transfer_id": to_bob.core.transfer_id, "transfer_hash": to_bob.leaf,
        "amount": [0, 3 * ETHER], "resolved": True, "encoded_resolver": to_bob.resolver,
    }]

    # transfer bob -> alice: nobody resolves it; after its dispute expires anyone refunds it
    relayer.sender.transact(contract.dispute_transfer(
        to_alice.core, proof_for(disputable.transfers, to_alice), state))
    assert contract.transfer_dispute(to_alice.leaf).expiry == anvil.block_timestamp() + 600
    _travel(anvil, 600)
    relayer.sender.transact(contract.defund_transfer(to_alice.core, to_alice.initial_state,
                                                     to_alice.resolver))
    assert contract.transfer_dispute(to_alice.leaf).defunded

    assert contract.exitable(ETH, alice.address) == 7 * ETHER
    assert contract.exitable(ETH, bob.address) == (3 + 1 + 3 + 2) * ETHER
    alice_before, bob_before = eth_balance(channel.w3, alice.address), eth_balance(
        channel.w3, bob.address)
    alice_exit = alice.sender.transact(contract.exit(ETH, alice.address, alice.address))
    bob_exit = relayer.sender.transact(contract.exit(ETH, bob.address, bob.address))

    assert eth_balance(channel.w3, alice.address) == (
        alice_before + 7 * ETHER - paid_gas(alice_exit))
    assert eth_balance(channel.w3, bob.address) == bob_before + 9 * ETHER  # relayer paid gas
    assert eth_balance(channel.w3, channel.address) == 0
    assert contract.total_transferred(ETH) == 16 * ETHER
    assert events(contract.contract.events.Exited, bob_exit) == [{
        "asset_id": ETH, "owner": bob.address, "recipient": bob.address, "amount": 9 * ETHER}]

    with pytest.raises(ContractLogicError, match="already defunded"):
        bob.sender.transact(contract.defund_transfer(to_bob.core, to_bob.initial_state,
                                                     to_bob.resolver))
    with pytest.raises(ContractLogicError, match="nothing to exit"):
        bob.sender.transact(contract.exit(ETH, bob.address, bob.address))


def test_only_the_owner_chooses_where_its_credit_goes(
    disputable: Disputable, anvil: Anvil, make_party: Callable[[], Party]
) -> None:
    channel, state = disputable.channel, disputable.states[5]
    thief = make_party()
    channel.dispute(state)
    _travel(anvil, TIMEOUT)
    channel.bob.sender.transact(channel.contract.defund_channel(state, [ETH]))
    with pytest.raises(ContractLogicError, match="not the owner"):
        thief.sender.transact(channel.contract.exit(ETH, channel.bob.address, thief.address))

    before = eth_balance(channel.w3, thief.address)
    receipt = channel.bob.sender.transact(
        channel.contract.exit(ETH, channel.bob.address, thief.address))
    assert eth_balance(channel.w3, thief.address) == before + 4 * ETHER
    assert receipt["status"] == 1


def test_a_relayer_resolves_a_transfer_only_with_the_responders_signature(
    disputable: Disputable, anvil: Anvil, make_party: Callable[[], Party]
) -> None:
    channel, state, transfer = disputable.channel, disputable.states[5], disputable.to_bob
    relayer = make_party()
    channel.dispute(state)
    _travel(anvil, TIMEOUT)
    relayer.sender.transact(channel.contract.dispute_transfer(
        transfer.core, proof_for(disputable.transfers, transfer), state))

    by_alice = channel.resolution_signature(channel.alice.signer, transfer, transfer.resolver)
    other_resolver = channel.resolution_signature(channel.bob.signer, transfer, b"\x01" * 32)
    for signature in (b"", by_alice, other_resolver):
        with pytest.raises(ContractLogicError, match="not the responder's resolution"):
            relayer.sender.transact(channel.contract.defund_transfer(
                transfer.core, transfer.initial_state, transfer.resolver, signature))

    by_bob = channel.resolution_signature(channel.bob.signer, transfer, transfer.resolver)
    relayer.sender.transact(channel.contract.defund_transfer(
        transfer.core, transfer.initial_state, transfer.resolver, by_bob))
    assert channel.contract.transfer_dispute(transfer.leaf).defunded
    assert channel.contract.exitable(ETH, channel.bob.address) == 3 * ETHER  # not defunded


def test_a_wrong_preimage_leaves_the_transfer_locked_until_it_is_refunded(
    disputable: Disputable, anvil: Anvil
) -> None:
    channel, state, transfer = disputable.channel, disputable.states[5], disputable.to_bob
    bob = channel.bob
    channel.dispute(state)
    _travel(anvil, TIMEOUT)
    bob.sender.transact(channel.contract.dispute_transfer(
        transfer.core, proof_for(disputable.transfers, transfer), state))
    wrong = disputable.to_alice.resolver
    with pytest.raises(ContractLogicError, match="wrong preimage"):
        bob.sender.transact(channel.contract.defund_transfer(
            transfer.core, transfer.initial_state, wrong))
    with pytest.raises(ContractLogicError, match="wrong initial state"):
        bob.sender.transact(channel.contract.defund_transfer(
            transfer.core, disputable.to_alice.initial_state, transfer.resolver))

    _travel(anvil, transfer.core.transfer_timeout)
    with pytest.raises(ContractLogicError, match="not disputed"):
        bob.sender.transact(channel.contract.defund_transfer(
            disputable.to_alice.core, disputable.to_alice.initial_state, wrong))
    bob.sender.transact(channel.contract.defund_transfer(
        transfer.core, transfer.initial_state, transfer.resolver))  # too late: refund
    assert channel.contract.exitable(ETH, channel.alice.address) == 3 * ETHER
    assert channel.contract.exitable(ETH, bob.address) == 0


def test_dispute_transfer_needs_a_proof_against_the_disputed_state(
    disputable: Disputable, anvil: Anvil
) -> None:
    channel, states, transfer = disputable.channel, disputable.states, disputable.to_bob
    bob = channel.bob
    channel.dispute(states[5])
    _travel(anvil, TIMEOUT)
    proof = proof_for(disputable.transfers, transfer)
    forged = channel.hashlock(channel.alice, 9 * ETHER)
    for core, bad_proof, against in (
        (transfer.core, [b"\x00" * 32], states[5]),
        (transfer.core, [], states[5]),
        (transfer.core, proof, states[4]),  # same root, other state hash
        (forged.core, proof, states[5]),
    ):
        with pytest.raises(ContractLogicError, match="not in the disputed state"):
            bob.sender.transact(channel.contract.dispute_transfer(core, bad_proof, against))
    assert channel.contract.transfer_dispute(transfer.leaf).expiry == 0


def test_defund_still_works_a_year_later_and_covers_assets_no_state_mentions(
    disputable: Disputable, anvil: Anvil, token: Contract
) -> None:
    channel, state = disputable.channel, disputable.states[5]
    bob = channel.bob
    bob.sender.transact(token.functions.mint(bob.address, 5 * ETHER))
    bob.sender.transact(token.functions.transfer(channel.address, 5 * ETHER))  # never processed
    channel.dispute(state)
    _travel(anvil, 365 * DAY)

    bob.sender.transact(channel.contract.defund_channel(state, [ETH, token.address]))
    bob.sender.transact(channel.contract.exit(token.address, bob.address, bob.address))
    bob.sender.transact(channel.contract.exit(ETH, bob.address, bob.address))

    assert token_balance(token, bob.address) == 5 * ETHER
    assert channel.contract.defund_nonce(token.address) == 1
    assert channel.contract.exitable(ETH, bob.address) == 0
    assert channel.contract.total_transferred(ETH) == 4 * ETHER


def test_a_later_dispute_after_the_window_opens_a_new_window_and_needs_a_new_defund_nonce(
    disputable: Disputable, anvil: Anvil
) -> None:
    channel, states = disputable.channel, disputable.states
    bob = channel.bob
    channel.dispute(states[5])
    _travel(anvil, TIMEOUT)
    bob.sender.transact(channel.contract.defund_channel(states[5], [ETH]))

    channel.dispute(states[7])
    record = channel.contract.channel_dispute()
    assert (record.nonce, record.consensus_expiry) == (7, anvil.block_timestamp() + TIMEOUT)
    with pytest.raises(ContractLogicError, match="consensus window open"):
        bob.sender.transact(channel.contract.defund_channel(states[7], [ETH]))
    _travel(anvil, TIMEOUT)
    with pytest.raises(ContractLogicError, match="already defunded"):  # same defund nonce 1
        bob.sender.transact(channel.contract.defund_channel(states[7], [ETH]))

    channel.dispute(states[8])  # defund nonce 2
    _travel(anvil, TIMEOUT)
    bob.sender.transact(channel.contract.defund_channel(states[8], [ETH]))
    assert channel.contract.defund_nonce(ETH) == 2
    # first defund: alice 7, bob 3 + 1; second: alice 4, bob 6 + 1 (still unprocessed)
    assert channel.contract.exitable(ETH, channel.alice.address) == 11 * ETHER
    assert channel.contract.exitable(ETH, bob.address) == 11 * ETHER


def test_disputes_need_both_parties_signatures_on_this_channel(
    disputable: Disputable, make_party: Callable[[], Party]
) -> None:
    channel, state = disputable.channel, disputable.states[5]
    sig_alice, sig_bob = channel.sign(state)
    with pytest.raises(ContractLogicError, match="bad alice signature"):
        channel.bob.sender.transact(channel.contract.dispute_channel(state, sig_bob, sig_bob))
    other = ChannelUnderTest(channel.alice, make_party(), channel.deployment, channel.w3)
    other.deploy()
    with pytest.raises(ContractLogicError, match="not this channel's parties"):
        channel.bob.sender.transact(other.contract.dispute_channel(state, sig_alice, sig_bob))
    assert channel.contract.channel_dispute().nonce == 0


def test_a_transfer_paying_an_outside_address_credits_that_address(
    channel: ChannelUnderTest, anvil: Anvil, make_party: Callable[[], Party]
) -> None:
    alice, bob, outsider = channel.alice, channel.bob, make_party()
    channel.deploy()
    alice.sender.transact(channel.contract.deposit_alice(ETH, 2 * ETHER), value=2 * ETHER)
    transfer = channel.hashlock(alice, 2 * ETHER)
    core = replace(transfer.core, balance=TransferBalance(
        amount=(2 * ETHER, 0), to=(alice.address, outsider.address)))
    transfer = HashlockTransfer(core, transfer.initial_state, transfer.preimage)
    state = channel.state(nonce=3, balances=[(0, 0)], processed_a=[2 * ETHER],
                          processed_b=[0], transfers=[transfer])
    channel.dispute(state)
    _travel(anvil, TIMEOUT)
    bob.sender.transact(channel.contract.dispute_transfer(transfer.core, [], state))
    bob.sender.transact(channel.contract.defund_transfer(
        transfer.core, transfer.initial_state, transfer.resolver))

    assert channel.contract.exitable(ETH, outsider.address) == 2 * ETHER
    assert channel.contract.exitable(ETH, bob.address) == 0
    before = eth_balance(channel.w3, outsider.address)
    receipt = outsider.sender.transact(
        channel.contract.exit(ETH, outsider.address, outsider.address))
    assert eth_balance(channel.w3, outsider.address) == before + 2 * ETHER - paid_gas(receipt)
