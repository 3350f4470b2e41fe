"""Withdraw: a withdrawal from the channel, settled by a double-signed commitment.

The initiator signs the withdraw commitment when creating the transfer; the responder's
signature in the resolver completes it, and the withdrawn amount leaves the channel (to be
paid on chain by the commitment). An empty signature cancels. Mirror of Withdraw.vy.
"""

from __future__ import annotations

from typing import Any

from ..encoding import address_bytes
from ..errors import InvalidTransferResolver, InvalidTransferState
from ..types import TransferBalance
from .base import TransferContext, TransferDefinition, signer_of


class Withdraw(TransferDefinition):
    name = "Withdraw"
    contract_name = "Withdraw"
    state_fields = (
        ("bytes", "initiatorSignature"),
        ("address", "initiator"),
        ("address", "responder"),
        ("bytes32", "commitmentHash"),
        ("uint256", "nonce"),
        ("uint256", "fee"),
    )
    resolver_fields = (("bytes", "responderSignature"),)

    @property
    def cancel_resolver(self) -> bytes:
        return self.encode_resolver(b"")

    def _check_initial_state(
        self, balance: TransferBalance, state: tuple[Any, ...], ctx: TransferContext
    ) -> None:
        signature, initiator, _responder, commitment, _nonce, fee = state
        if fee > balance.amount[0]:
            raise InvalidTransferState("Withdraw: the fee is larger than the amount")
        if signer_of(commitment, signature) != address_bytes(initiator):
            raise InvalidTransferState("Withdraw: the initiator did not sign the commitment")

    def _resolve(
        self,
        balance: TransferBalance,
        state: tuple[Any, ...],
        resolver: tuple[Any, ...],
        ctx: TransferContext,
    ) -> tuple[int, int]:
        _sig, _initiator, responder, commitment, _nonce, fee = state
        (responder_signature,) = resolver
        if len(responder_signature) == 0:
            return balance.amount
        if signer_of(commitment, responder_signature) != address_bytes(responder):
            raise InvalidTransferResolver("Withdraw: the responder did not sign the commitment")
        return (0, fee)
