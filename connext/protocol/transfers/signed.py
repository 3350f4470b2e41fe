"""Signed (oracle): pays the responder when a named signer signs a receipt for the payment.

The receipt is EIP-712 `Receipt(paymentId, data)` under the definition's own domain. An
empty signature cancels. Mirror of contracts/transfers/Signed.vy.
"""

from __future__ import annotations

from typing import Any

from ..encoding import address_bytes, receipt_digest
from ..errors import InvalidTransferResolver, InvalidTransferState
from ..types import ETH, TransferBalance
from .base import TransferContext, TransferDefinition, signer_of


class Signed(TransferDefinition):
    name = "Signed"
    contract_name = "Signed"
    state_fields = (("address", "signer"), ("bytes32", "paymentId"))
    resolver_fields = (("bytes32", "data"), ("bytes", "signature"))

    @property
    def cancel_resolver(self) -> bytes:
        return self.encode_resolver(bytes(32), b"")

    def _check_initial_state(
        self, balance: TransferBalance, state: tuple[Any, ...], ctx: TransferContext
    ) -> None:
        signer, _payment_id = state
        if address_bytes(signer) == address_bytes(ETH):
            raise InvalidTransferState("Signed: the signer must not be the zero address")

    def _resolve(
        self,
        balance: TransferBalance,
        state: tuple[Any, ...],
        resolver: tuple[Any, ...],
        ctx: TransferContext,
    ) -> tuple[int, int]:
        signer, payment_id = state
        data, signature = resolver
        if len(signature) == 0:
            return balance.amount
        digest = receipt_digest(ctx.chain_id, ctx.definition, payment_id, data)
        if signer_of(digest, signature) != address_bytes(signer):
            raise InvalidTransferResolver("Signed: the receipt is not signed by the signer")
        return (0, balance.amount[0] + balance.amount[1])
