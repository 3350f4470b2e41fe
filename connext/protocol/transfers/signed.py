"""Signed (oracle): pays the responder when a named signer signs a receipt for the payment.

The receipt is EIP-712 `Receipt(paymentId, data)` under the definition's own domain. An
empty signature cancels. After the expiry a receipt pays only if its evidence (keccak of
its digest and signature) was registered in the secret registry by then. Mirror of
contracts/transfers/Signed.vy.
"""

from __future__ import annotations

from typing import Any

from ..encoding import address_bytes, receipt_digest
from ..errors import InvalidTransferResolver, InvalidTransferState
from ..types import ETH, TransferBalance
from .base import (
    TransferContext,
    TransferDefinition,
    evidence_hash,
    evidence_of,
    in_time,
    signer_of,
)


class Signed(TransferDefinition):
    name = "Signed"
    contract_name = "Signed"
    state_fields = (("address", "signer"), ("bytes32", "paymentId"), ("uint256", "expiry"))
    expiry_field = 2
    resolver_fields = (("bytes32", "data"), ("bytes", "signature"))

    @property
    def cancel_resolver(self) -> bytes:
        return self.encode_resolver(bytes(32), b"")

    def _check_initial_state(
        self, balance: TransferBalance, state: tuple[Any, ...], ctx: TransferContext
    ) -> None:
        signer, _payment_id, expiry = state
        if address_bytes(signer) == address_bytes(ETH):
            raise InvalidTransferState("Signed: the signer must not be the zero address")
        if expiry != 0 and expiry <= ctx.now:
            raise InvalidTransferState("Signed: the expiry is in the past")

    def _resolve(
        self,
        balance: TransferBalance,
        state: tuple[Any, ...],
        resolver: tuple[Any, ...],
        ctx: TransferContext,
    ) -> tuple[int, int]:
        signer, payment_id, expiry = state
        data, signature = resolver
        if len(signature) == 0:
            return balance.amount
        digest = receipt_digest(ctx.chain_id, ctx.definition, payment_id, data)
        if signer_of(digest, signature) != address_bytes(signer):
            raise InvalidTransferResolver("Signed: the receipt is not signed by the signer")
        if not in_time(expiry, evidence_hash(evidence_of(digest, signature)), ctx):
            raise InvalidTransferResolver("Signed: the payment has expired")
        return (0, balance.amount[0] + balance.amount[1])

    def evidence(self, encoded_state: bytes, encoded_resolver: bytes,
                 ctx: TransferContext) -> bytes | None:
        _signer, payment_id, _expiry = self.decode_state(encoded_state)
        data, signature = self.decode_resolver(encoded_resolver)
        if len(signature) == 0:
            return None
        return evidence_of(receipt_digest(ctx.chain_id, ctx.definition, payment_id, data),
                           signature)
