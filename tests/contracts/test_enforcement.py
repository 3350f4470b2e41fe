"""What makes a channel safe against a party that deviates on purpose, on chain.

- A hashlock whose preimage was registered in the secret registry no later than its
  expiry pays its responder when the transfer is disputed long after the expiry.
- A Withdraw transfer and its commitment pay once between them, in either order.
- Only a party, or an address a party authorised by signature, may dispute a channel.
Time moves with anvil's clock.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from eth_abi.abi import decode
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from connext.chain.anvil import Anvil
from connext.chain.channel import WithdrawCommitment
from connext.chain.contracts import contract, encode_call
from connext.protocol.encoding import (
    checksum,
    dispute_authorization_digest,
    keccak,
    receipt_digest,
    transfer_hash,
    voucher_digest,
    withdraw_commitment_digest,
)
from connext.protocol.signing import Signer
from connext.protocol.transfers import SIGNED, STREAM, WITHDRAW
from connext.protocol.transfers.base import evidence_of
from connext.protocol.types import ETH, CoreTransferState, TransferBalance

from .helpers import ETHER, ChannelUnderTest, Party, eth_balance, events, paid_gas, try_call

pytestmark = pytest.mark.chain

TIMEOUT = 3600
DAY = 86_400


def _travel(anvil: Anvil, seconds: int) -> None:
    anvil.increase_time(seconds)
    anvil.mine()


@pytest.fixture
def registry(channel: ChannelUnderTest) -> Contract:
    return contract(channel.w3, "SecretRegistry", channel.deployment.secret_registry)


def test_a_preimage_is_registered_once_with_the_block_time_of_its_first_registration(
    registry: Contract, channel: ChannelUnderTest, anvil: Anvil
) -> None:
    preimage = os.urandom(32)
    lock = hashlib.sha256(preimage).digest()
    assert registry.functions.registered_at(lock).call() == 0

    receipt = channel.bob.sender.transact(registry.functions.register(preimage))
    first = anvil.block_timestamp()
    assert registry.functions.registered_at(lock).call() == first
    assert events(registry.events.SecretRegistered, receipt) == [
        {"lock_hash": lock, "preimage": preimage}]

    _travel(anvil, 100)
    assert registry.functions.register(preimage).call() is False
    again = channel.alice.sender.transact(registry.functions.register(preimage))
    assert events(registry.events.SecretRegistered, again) == []
    assert registry.functions.registered_at(lock).call() == first


@pytest.mark.parametrize("registered_before_expiry", [True, False])
def test_a_lock_registered_by_its_expiry_pays_when_disputed_a_day_later(
    registered_before_expiry: bool, channel: ChannelUnderTest, registry: Contract,
    anvil: Anvil,
) -> None:
    alice, bob = channel.alice, channel.bob
    channel.deploy()
    alice.sender.transact(channel.contract.deposit_alice(ETH, 4 * ETHER), value=4 * ETHER)
    expiry = anvil.block_timestamp() + 600
    transfer = channel.hashlock(alice, 3 * ETHER, expiry=expiry)
    state = channel.state(nonce=3, balances=[(ETHER, 0)], processed_a=[4 * ETHER],
                          processed_b=[0], timeout=DAY, transfers=[transfer])

    # bob was not countersigned: it reveals the preimage on chain before (or after) expiry
    _travel(anvil, 500 if registered_before_expiry else 700)
    bob.sender.transact(registry.functions.register(transfer.preimage))
    channel.dispute(state)
    _travel(anvil, DAY + 60)  # every lock has expired by the end of the window
    bob.sender.transact(channel.contract.defund_channel(state, [ETH]))
    bob.sender.transact(channel.contract.dispute_transfer(transfer.core, [], state))

    if registered_before_expiry:
        bob.sender.transact(channel.contract.defund_transfer(
            transfer.core, transfer.initial_state, transfer.resolver))
        assert channel.contract.exitable(ETH, bob.address) == 3 * ETHER
        assert channel.contract.exitable(ETH, alice.address) == ETHER
    else:
        with pytest.raises(ContractLogicError, match="Hashlock: expired"):
            bob.sender.transact(channel.contract.defund_transfer(
                transfer.core, transfer.initial_state, transfer.resolver))
        _travel(anvil, 7200)  # the transfer's dispute window: then it is refunded
        alice.sender.transact(channel.contract.defund_transfer(
            transfer.core, transfer.initial_state, b""))
        assert channel.contract.exitable(ETH, bob.address) == 0
        assert channel.contract.exitable(ETH, alice.address) == 4 * ETHER


@dataclass(frozen=True)
class WithdrawTransfer:
    """bob's Withdraw transfer to alice: `amount` locked, `fee` of it to alice."""

    core: CoreTransferState
    initial_state: bytes
    commitment: WithdrawCommitment
    signatures: tuple[bytes, bytes]
    """(alice's, bob's) signatures on the commitment."""

    @property
    def leaf(self) -> bytes:
        return transfer_hash(self.core)

    @property
    def resolver(self) -> bytes:
        return WITHDRAW.encode_resolver(self.signatures[0])


def _withdraw_transfer(channel: ChannelUnderTest, recipient: str, amount: int, fee: int,
                       nonce: int) -> WithdrawTransfer:
    alice, bob = channel.alice, channel.bob
    commitment = WithdrawCommitment(recipient, ETH, amount - fee, nonce)
    digest = withdraw_commitment_digest(channel.deployment.chain_id, channel.address,
                                        recipient, ETH, amount - fee, nonce)
    sig_alice, sig_bob = alice.signer.sign(digest), bob.signer.sign(digest)
    initial = WITHDRAW.encode_state(sig_bob, bob.address, alice.address, digest, nonce, fee)
    core = CoreTransferState(
        channel_address=channel.address, transfer_id=os.urandom(32),
        transfer_definition=channel.deployment.definitions["Withdraw"],
        initiator=bob.address, responder=alice.address, asset_id=ETH,
        balance=TransferBalance(amount=(amount, 0), to=(bob.address, alice.address)),
        transfer_timeout=TIMEOUT, initial_state_hash=keccak(initial))
    return WithdrawTransfer(core, initial, commitment, (sig_alice, sig_bob))


@pytest.fixture
def withdrawing(channel: ChannelUnderTest) -> tuple[WithdrawTransfer, object]:
    """bob (5 ETH deposited) has 2 ETH locked in a Withdraw transfer to a cold address
    (fee 0.1 ETH to alice); alice's signature on the commitment reached bob (it travels
    in alice's resolve proposal), the resolve itself was never countersigned."""
    channel.deploy()
    channel.bob.sender.send_eth(channel.address, 5 * ETHER)
    transfer = _withdraw_transfer(channel, checksum(os.urandom(20)), 2 * ETHER, ETHER // 10,
                                  nonce=4)
    state = channel.state(nonce=4, balances=[(0, 3 * ETHER)], processed_a=[0],
                          processed_b=[5 * ETHER], transfers=[transfer])  # type: ignore[list-item]
    return transfer, state


def test_an_executed_withdrawal_is_not_refunded_as_well(
    channel: ChannelUnderTest, withdrawing: tuple[WithdrawTransfer, object], anvil: Anvil,
) -> None:
    transfer, state = withdrawing
    bob = channel.bob
    # bob takes its money out with the commitment, then disputes the state in which the
    # Withdraw transfer is still active, hoping for a refund of it after the window
    bob.sender.transact(channel.contract.withdraw(transfer.commitment, *transfer.signatures))
    channel.dispute(state)  # type: ignore[arg-type]
    _travel(anvil, TIMEOUT + 60)
    bob.sender.transact(channel.contract.defund_channel(state, [ETH]))  # type: ignore[arg-type]
    bob.sender.transact(channel.contract.dispute_transfer(transfer.core, [], state))  # type: ignore[arg-type]
    _travel(anvil, TIMEOUT + 60)  # nobody resolves it: the refund path
    receipt = bob.sender.transact(channel.contract.defund_transfer(
        transfer.core, transfer.initial_state, b""))

    fee = ETHER // 10
    assert events(channel.contract.contract.events.TransferDefunded, receipt)[0]["amount"] \
        == [0, fee]
    assert channel.contract.exitable(ETH, bob.address) == 3 * ETHER
    assert channel.contract.exitable(ETH, channel.alice.address) == fee
    assert eth_balance(channel.w3, transfer.commitment.recipient) == 2 * ETHER - fee


def test_a_refunded_withdrawal_can_no_longer_be_executed(
    channel: ChannelUnderTest, withdrawing: tuple[WithdrawTransfer, object], anvil: Anvil,
) -> None:
    transfer, state = withdrawing
    bob = channel.bob
    # the other order: the refund first, then the commitment
    channel.dispute(state)  # type: ignore[arg-type]
    _travel(anvil, TIMEOUT + 60)
    bob.sender.transact(channel.contract.defund_channel(state, [ETH]))  # type: ignore[arg-type]
    bob.sender.transact(channel.contract.dispute_transfer(transfer.core, [], state))  # type: ignore[arg-type]
    _travel(anvil, TIMEOUT + 60)
    bob.sender.transact(channel.contract.defund_transfer(
        transfer.core, transfer.initial_state, b""))
    assert channel.contract.exitable(ETH, bob.address) == 5 * ETHER
    assert channel.contract.withdrawal_used(transfer.commitment.nonce)

    with pytest.raises(ContractLogicError, match="commitment already used"):
        bob.sender.transact(channel.contract.withdraw(transfer.commitment, *transfer.signatures))
    assert eth_balance(channel.w3, transfer.commitment.recipient) == 0


def test_a_withdrawal_resolved_on_chain_is_paid_by_its_commitment_once(
    channel: ChannelUnderTest, withdrawing: tuple[WithdrawTransfer, object], anvil: Anvil,
) -> None:
    transfer, state = withdrawing
    alice, bob = channel.alice, channel.bob
    channel.dispute(state)  # type: ignore[arg-type]
    _travel(anvil, TIMEOUT + 60)
    alice.sender.transact(channel.contract.defund_channel(state, [ETH]))  # type: ignore[arg-type]
    alice.sender.transact(channel.contract.dispute_transfer(transfer.core, [], state))  # type: ignore[arg-type]
    # alice (the responder) settles it with its signature: the commitment pays the rest
    alice.sender.transact(channel.contract.defund_transfer(
        transfer.core, transfer.initial_state, transfer.resolver))
    assert channel.contract.exitable(ETH, alice.address) == ETHER // 10
    assert channel.contract.exitable(ETH, bob.address) == 3 * ETHER
    bob.sender.transact(channel.contract.withdraw(transfer.commitment, *transfer.signatures))
    assert eth_balance(channel.w3, transfer.commitment.recipient) == 2 * ETHER - ETHER // 10
    with pytest.raises(ContractLogicError, match="commitment already used"):
        bob.sender.transact(channel.contract.withdraw(transfer.commitment, *transfer.signatures))


def test_only_a_party_or_whom_it_authorised_can_dispute(
    channel: ChannelUnderTest, make_party: Callable[[], Party], anvil: Anvil,
) -> None:
    channel.deploy()
    state = channel.state(nonce=2)
    signatures = channel.sign(state)
    outsider, watchtower = make_party(), make_party()

    # a signed state that leaked does not let anyone else end the channel
    with pytest.raises(ContractLogicError, match="not a party or authorised"):
        outsider.sender.transact(channel.contract.dispute_channel(state, *signatures))
    stranger_says = outsider.signer.sign(dispute_authorization_digest(
        channel.deployment.chain_id, channel.address, outsider.address))
    with pytest.raises(ContractLogicError, match="not a party or authorised"):
        outsider.sender.transact(channel.contract.dispute_channel(state, *signatures,
                                                                  stranger_says))
    # bob authorised its watchtower, not the outsider: the outsider cannot reuse it
    authorization = channel.bob.signer.sign(dispute_authorization_digest(
        channel.deployment.chain_id, channel.address, watchtower.address))
    with pytest.raises(ContractLogicError, match="not a party or authorised"):
        outsider.sender.transact(channel.contract.dispute_channel(state, *signatures,
                                                                  authorization))
    assert channel.contract.channel_dispute().nonce == 0

    before = eth_balance(channel.w3, watchtower.address)
    receipt = watchtower.sender.transact(channel.contract.dispute_channel(
        state, *signatures, authorization))
    assert channel.contract.channel_dispute().nonce == 2
    assert eth_balance(channel.w3, watchtower.address) == before - paid_gas(receipt)


@pytest.mark.parametrize("definition", ["Signed", "Stream"])
@pytest.mark.parametrize("registered_before_expiry", [True, False])
def test_a_receipt_or_voucher_registered_by_its_expiry_still_pays_after_it(
    definition: str, registered_before_expiry: bool, channel: ChannelUnderTest,
    registry: Contract, anvil: Anvil,
) -> None:
    deployment = channel.deployment
    address = deployment.definitions[definition]
    signer = Signer.random()
    ident, data = os.urandom(32), os.urandom(32)
    now = anvil.block_timestamp()
    expiry = now + 600
    if definition == "Signed":
        digest = receipt_digest(deployment.chain_id, address, ident, data)
        state, resolver_of = SIGNED.encode_state(signer.address, ident, expiry), \
            SIGNED.encode_resolver
        args: tuple[object, ...] = (data,)
    else:
        digest = voucher_digest(deployment.chain_id, address, ident, 7 * ETHER)
        state, resolver_of = STREAM.encode_state(signer.address, ident, expiry), \
            STREAM.encode_resolver
        args = (7 * ETHER,)
    signature = signer.sign(digest)
    resolver = resolver_of(*args, signature)
    balance = ([10 * ETHER, 0], [channel.alice.address, channel.bob.address])

    _travel(anvil, 500 if registered_before_expiry else 700)
    channel.bob.sender.transact(registry.functions.register(evidence_of(digest, signature)))
    _travel(anvil, DAY)
    result = try_call(anvil, address, encode_call(definition, "resolve", balance, state,
                                                  resolver))
    if registered_before_expiry:
        assert result is not None
        ((amount, _to),) = decode(["(uint256[2],address[2])"], result)
        assert amount[1] == (10 if definition == "Signed" else 7) * ETHER
    else:
        assert result is None  # expired, and registered too late
