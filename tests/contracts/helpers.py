"""Building blocks for contract tests: funded parties and a channel between two of them.

States, commitments and transfers are built with the protocol's own types and signed with
its own signing code, so every test also checks that Python and the contracts agree.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from connext.chain.anvil import Anvil, AnvilError
from connext.chain.channel import ChannelContract, WithdrawCommitment
from connext.chain.contracts import Sender, contract
from connext.chain.deploy import Deployment
from connext.protocol.encoding import (
    channel_address,
    channel_state_digest,
    keccak,
    transfer_hash,
    transfer_resolution_digest,
    withdraw_commitment_digest,
)
from connext.protocol.merkle import merkle_proof, merkle_root
from connext.protocol.signing import Signer
from connext.protocol.transfers import HASHLOCK
from connext.protocol.types import (
    ETH,
    ZERO_HASH,
    Balance,
    ChannelState,
    CoreTransferState,
    TransferBalance,
)

ETHER = 10**18


@dataclass(frozen=True)
class Party:
    """A key with ETH on the chain, and a sender that signs with it."""

    signer: Signer
    sender: Sender

    @property
    def address(self) -> str:
        return self.signer.address


def new_party(anvil: Anvil, w3: Web3, ether: int = 1000) -> Party:
    signer = Signer.random()
    anvil.set_balance(signer.address, ether * ETHER)
    return Party(signer, Sender(w3, signer.private_key))


@dataclass(frozen=True)
class HashlockTransfer:
    """An active hashlock transfer: its core (the merkle leaf) and what resolves it."""

    core: CoreTransferState
    initial_state: bytes
    preimage: bytes

    @property
    def leaf(self) -> bytes:
        return transfer_hash(self.core)

    @property
    def resolver(self) -> bytes:
        return HASHLOCK.encode_resolver(self.preimage)


@dataclass
class ChannelUnderTest:
    """The channel between `alice` and `bob` on the test chain (deployed or not)."""

    alice: Party
    bob: Party
    deployment: Deployment
    w3: Web3

    @cached_property
    def address(self) -> str:
        return channel_address(
            self.deployment.channel_factory,
            self.deployment.channel_mastercopy,
            self.alice.address,
            self.bob.address,
            self.deployment.chain_id,
        )

    @cached_property
    def contract(self) -> ChannelContract:
        return ChannelContract(self.w3, self.address, self.alice.address, self.bob.address)

    @property
    def factory(self) -> Contract:
        return contract(self.w3, "ChannelFactory", self.deployment.channel_factory)

    def deploy(self, by: Party | None = None) -> TxReceipt:
        sender = (by or self.alice).sender
        return sender.transact(
            self.factory.functions.create_channel(self.alice.address, self.bob.address)
        )

    def state(
        self,
        *,
        nonce: int,
        asset_ids: Sequence[str] = (ETH,),
        balances: Sequence[tuple[int, int]] = ((0, 0),),
        processed_a: Sequence[int] = (0,),
        processed_b: Sequence[int] = (0,),
        defund_nonces: Sequence[int] | None = None,
        timeout: int = 3600,
        transfers: Sequence[HashlockTransfer] = (),
    ) -> ChannelState:
        return ChannelState(
            channel_address=self.address,
            alice=self.alice.address,
            bob=self.bob.address,
            network=self.deployment.network,
            asset_ids=tuple(asset_ids),
            balances=tuple(Balance(a, b) for a, b in balances),
            processed_deposits_a=tuple(processed_a),
            processed_deposits_b=tuple(processed_b),
            defund_nonces=tuple(defund_nonces or [1] * len(asset_ids)),
            timeout=timeout,
            nonce=nonce,
            merkle_root=merkle_root(t.leaf for t in transfers) if transfers else ZERO_HASH,
        )

    def sign(self, state: ChannelState) -> tuple[bytes, bytes]:
        digest = channel_state_digest(state)
        return self.alice.signer.sign(digest), self.bob.signer.sign(digest)

    def dispute(self, state: ChannelState, by: Party | None = None) -> TxReceipt:
        return (by or self.bob).sender.transact(
            self.contract.dispute_channel(state, *self.sign(state))
        )

    def sign_commitment(self, commitment: WithdrawCommitment) -> tuple[bytes, bytes]:
        digest = withdraw_commitment_digest(
            self.deployment.chain_id,
            self.address,
            commitment.recipient,
            commitment.asset_id,
            commitment.amount,
            commitment.nonce,
        )
        return self.alice.signer.sign(digest), self.bob.signer.sign(digest)

    def hashlock(
        self,
        payer: Party,
        amount: int,
        *,
        asset_id: str = ETH,
        transfer_timeout: int = 7200,
        expiry: int = 0,
    ) -> HashlockTransfer:
        payee = self.bob if payer is self.alice else self.alice
        preimage = os.urandom(32)
        initial_state = HASHLOCK.encode_state(hashlib.sha256(preimage).digest(), expiry)
        core = CoreTransferState(
            channel_address=self.address,
            transfer_id=os.urandom(32),
            transfer_definition=self.deployment.definitions["Hashlock"],
            initiator=payer.address,
            responder=payee.address,
            asset_id=asset_id,
            balance=TransferBalance(amount=(amount, 0), to=(payer.address, payee.address)),
            transfer_timeout=transfer_timeout,
            initial_state_hash=keccak(initial_state),
        )
        return HashlockTransfer(core, initial_state, preimage)

    def resolution_signature(self, signer: Signer, transfer: HashlockTransfer,
                             resolver: bytes) -> bytes:
        return signer.sign(
            transfer_resolution_digest(
                self.deployment.chain_id, self.address, transfer.core.transfer_id, resolver
            )
        )


def proof_for(transfers: Sequence[HashlockTransfer], transfer: HashlockTransfer) -> list[bytes]:
    return merkle_proof([t.leaf for t in transfers], transfer.leaf)


def try_call(anvil: Anvil, to: str, data: bytes, block: str | int = "latest",
             sender: str | None = None) -> bytes | None:
    """eth_call straight to anvil (web3's call costs three round trips): the returned
    bytes, or None when the call reverts or halts (e.g. out of gas on a huge ABI offset).
    `sender`: the caller the contract sees (default: the zero address)."""
    tag = block if isinstance(block, str) else hex(block)
    call = {"to": to, "data": "0x" + data.hex(), "gas": hex(10**7)}
    if sender is not None:
        call["from"] = sender
    try:
        result: str = anvil.rpc("eth_call", [call, tag])
    except AnvilError as exc:
        message = str(exc).lower()
        if "revert" in message or "evm error" in message or "out of gas" in message:
            return None
        raise
    return bytes.fromhex(result.removeprefix("0x"))


def events(event: Any, receipt: TxReceipt) -> list[dict[str, Any]]:
    """The decoded `event`s of a receipt (other contracts' logs are skipped)."""
    return [dict(e["args"]) for e in event().process_receipt(receipt, errors=DISCARD)]


def eth_balance(w3: Web3, address: str) -> int:
    return int(w3.eth.get_balance(Web3.to_checksum_address(address)))


def token_balance(token: Contract, address: str) -> int:
    return int(token.functions.balanceOf(Web3.to_checksum_address(address)).call())


def paid_gas(receipt: TxReceipt) -> int:
    """Wei the sender paid for a transaction (to account for it in balance checks)."""
    return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])


def high_s_twin(signature: bytes) -> bytes:
    """The malleable twin (n - s, flipped v) of a valid signature: same signer, high s."""
    from connext.protocol.signing import SECP256K1_N

    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - v,))
