"""The channel contract seen from Python: protocol types in, unsent contract calls out.

`ChannelContract` turns `ChannelState`, `CoreTransferState` and withdraw commitments into
the ABI tuples ChannelMastercopy expects and returns web3 `ContractFunction`s, so the
caller decides who sends them (a `Sender`, the node's transaction manager). Reads are
plain calls. It never signs anything: signatures come from the protocol's signers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import BlockIdentifier

from ..protocol.encoding import channel_state_struct_hash, keccak
from ..protocol.types import ETH, Address, ChannelState, CoreTransferState
from .contracts import contract


@dataclass(frozen=True, slots=True)
class WithdrawCommitment:
    """What both parties sign to let `recipient` take `amount` out of the channel once."""

    recipient: Address
    asset_id: Address
    amount: int
    nonce: int

    def as_tuple(self) -> tuple[str, str, int, int]:
        return (
            Web3.to_checksum_address(self.recipient),
            Web3.to_checksum_address(self.asset_id),
            self.amount,
            self.nonce,
        )


@dataclass(frozen=True, slots=True)
class ChannelDispute:
    """The on-chain dispute record (all zero while there is none)."""

    dispute_hash: bytes
    """keccak(state struct hash ++ merkle root) of the disputed state."""
    nonce: int
    consensus_expiry: int


@dataclass(frozen=True, slots=True)
class TransferDispute:
    expiry: int
    defunded: bool


def channel_state_tuple(state: ChannelState) -> tuple[Any, ...]:
    """ABI tuple of ChannelMastercopy.ChannelState (field order of the EIP-712 type)."""
    return (
        state.alice,
        state.bob,
        list(state.asset_ids),
        [b.alice for b in state.balances],
        [b.bob for b in state.balances],
        list(state.processed_deposits_a),
        list(state.processed_deposits_b),
        list(state.defund_nonces),
        state.timeout,
        state.nonce,
        state.merkle_root,
    )


def core_transfer_tuple(core: CoreTransferState) -> tuple[Any, ...]:
    """ABI tuple of ChannelMastercopy.CoreTransferState."""
    return (
        core.channel_address,
        core.transfer_id,
        core.transfer_definition,
        core.initiator,
        core.responder,
        core.asset_id,
        (list(core.balance.amount), list(core.balance.to)),
        core.transfer_timeout,
        core.initial_state_hash,
    )


def dispute_hash(state: ChannelState) -> bytes:
    """What the channel records for a disputed state: keccak(struct hash ++ merkle root)."""
    return keccak(channel_state_struct_hash(state) + state.merkle_root)


class ChannelContract:
    """One channel (deployed or not) between `alice` and `bob`."""

    def __init__(self, w3: Web3, address: Address, alice: Address, bob: Address) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.alice = Web3.to_checksum_address(alice)
        self.bob = Web3.to_checksum_address(bob)
        self.contract: Contract = contract(w3, "ChannelMastercopy", self.address)

    # -- state-changing calls (unsent) -------------------------------------------------

    def deposit_alice(self, asset_id: Address, amount: int) -> ContractFunction:
        """Send with value=amount for ETH; approve the channel first for a token."""
        return self.contract.functions.deposit_alice(self.alice, self.bob, asset_id, amount)

    def withdraw(
        self, commitment: WithdrawCommitment, signature_alice: bytes, signature_bob: bytes
    ) -> ContractFunction:
        return self.contract.functions.withdraw(
            self.alice, self.bob, commitment.as_tuple(), signature_alice, signature_bob
        )

    def dispute_channel(
        self, state: ChannelState, signature_alice: bytes, signature_bob: bytes,
        authorization: bytes = b"",
    ) -> ContractFunction:
        """Sent by a party (no `authorization`), or by an address a party authorised with
        its signature on `dispute_authorization_digest(..., disputer)`."""
        return self.contract.functions.dispute_channel(
            channel_state_tuple(state), signature_alice, signature_bob, authorization
        )

    def defund_channel(self, state: ChannelState, asset_ids: Sequence[Address]) -> ContractFunction:
        return self.contract.functions.defund_channel(channel_state_tuple(state), list(asset_ids))

    def dispute_transfer(
        self, core: CoreTransferState, proof: Sequence[bytes], disputed_state: ChannelState
    ) -> ContractFunction:
        """Prove `core` in the merkle root of `disputed_state` (the state on chain)."""
        return self.contract.functions.dispute_transfer(
            core_transfer_tuple(core), list(proof), channel_state_struct_hash(disputed_state)
        )

    def defund_transfer(
        self,
        core: CoreTransferState,
        encoded_initial_state: bytes,
        encoded_resolver: bytes,
        responder_signature: bytes = b"",
    ) -> ContractFunction:
        return self.contract.functions.defund_transfer(
            core_transfer_tuple(core), encoded_initial_state, encoded_resolver, responder_signature
        )

    def exit(self, asset_id: Address, owner: Address, recipient: Address) -> ContractFunction:
        return self.contract.functions.exit(self.alice, self.bob, asset_id, owner, recipient)

    # -- reads ---------------------------------------------------------------------------

    def is_deployed(self, block: BlockIdentifier = "latest") -> bool:
        return len(self.w3.eth.get_code(self.address, block_identifier=block)) > 0

    def deposit_totals(self, asset_id: Address = ETH) -> tuple[int, int]:
        """(alice's, bob's) deposits so far, every read at one block. Read at whatever
        block is latest at each call, a deposit that deploys the channel, mined between
        two reads, shows as "not deployed" beside the balance it brought: its amount
        would count as bob's, and a deposit update claiming that is refused for good."""
        block = self.w3.eth.block_number
        if not self.is_deployed(block):
            return 0, self._balance(asset_id, block)
        functions = self.contract.functions
        return (int(functions.total_deposits_alice(asset_id).call(block_identifier=block)),
                int(functions.total_deposits_bob(asset_id).call(block_identifier=block)))

    def total_deposits_alice(self, asset_id: Address = ETH) -> int:
        """Alice's deposits so far (0 before deployment: she deposits through the proxy)."""
        if not self.is_deployed():
            return 0
        return int(self.contract.functions.total_deposits_alice(asset_id).call())

    def total_deposits_bob(self, asset_id: Address = ETH) -> int:
        """Bob's deposits so far; before deployment, simply what the address holds."""
        if not self.is_deployed():
            return self._balance(asset_id)
        return int(self.contract.functions.total_deposits_bob(asset_id).call())

    def total_transferred(self, asset_id: Address = ETH) -> int:
        return int(self.contract.functions.total_transferred(asset_id).call())

    def withdrawal_used(self, nonce: int) -> bool:
        return bool(self.contract.functions.withdrawal_used(nonce).call())

    def channel_dispute(self) -> ChannelDispute:
        dispute_hash, nonce, expiry = self.contract.functions.channel_dispute().call()
        return ChannelDispute(bytes(dispute_hash), int(nonce), int(expiry))

    def defund_nonce(self, asset_id: Address = ETH) -> int:
        return int(self.contract.functions.defund_nonce(asset_id).call())

    def exitable(self, asset_id: Address, owner: Address) -> int:
        return int(
            self.contract.functions.exitable(self.alice, self.bob, asset_id, owner).call()
        )

    def transfer_dispute(self, transfer_hash: bytes) -> TransferDispute:
        expiry, defunded = self.contract.functions.transfer_dispute(transfer_hash).call()
        return TransferDispute(int(expiry), bool(defunded))

    def _balance(self, asset_id: Address, block: BlockIdentifier = "latest") -> int:
        if asset_id == ETH:
            return int(self.w3.eth.get_balance(self.address, block_identifier=block))
        token = contract(self.w3, "TestToken", asset_id)
        return int(token.functions.balanceOf(self.address).call(block_identifier=block))
