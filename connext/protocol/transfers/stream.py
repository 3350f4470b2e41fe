"""Stream: metered payments against a locked budget, settled by the highest voucher.

The payer signs cumulative `Voucher(streamId, amount)` messages off the channel; resolving
with one pays min(amount, budget) to the responder and returns the rest. After the stream's
expiry a voucher pays only if its evidence was registered in the secret registry by then.
The voucher names the stream, not the transfer, so one voucher resolves both hops of a
routed stream.
Mirror of contracts/transfers/Stream.vy.
"""

from __future__ import annotations

from typing import Any

from ..encoding import address_bytes, voucher_digest
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


class Stream(TransferDefinition):
    name = "Stream"
    contract_name = "Stream"
    state_fields = (("address", "signer"), ("bytes32", "streamId"), ("uint256", "expiry"))
    expiry_field = 2
    resolver_fields = (("uint256", "amount"), ("bytes", "signature"))

    @property
    def cancel_resolver(self) -> bytes:
        return self.encode_resolver(0, b"")

    def _check_initial_state(
        self, balance: TransferBalance, state: tuple[Any, ...], ctx: TransferContext
    ) -> None:
        signer, _stream_id, expiry = state
        if address_bytes(signer) == address_bytes(ETH):
            raise InvalidTransferState("Stream: the signer must not be the zero address")
        if expiry != 0 and expiry <= ctx.now:
            raise InvalidTransferState("Stream: the expiry is in the past")

    def _resolve(
        self,
        balance: TransferBalance,
        state: tuple[Any, ...],
        resolver: tuple[Any, ...],
        ctx: TransferContext,
    ) -> tuple[int, int]:
        signer, stream_id, expiry = state
        voucher_amount, signature = resolver
        if len(signature) == 0:
            return balance.amount
        digest = voucher_digest(ctx.chain_id, ctx.definition, stream_id, voucher_amount)
        if signer_of(digest, signature) != address_bytes(signer):
            raise InvalidTransferResolver("Stream: the voucher is not signed by the payer")
        if not in_time(expiry, evidence_hash(evidence_of(digest, signature)), ctx):
            raise InvalidTransferResolver("Stream: the stream has expired")
        paid = min(voucher_amount, balance.amount[0])
        return (balance.amount[0] - paid, balance.amount[1] + paid)

    def evidence(self, encoded_state: bytes, encoded_resolver: bytes,
                 ctx: TransferContext) -> bytes | None:
        _signer, stream_id, _expiry = self.decode_state(encoded_state)
        amount, signature = self.decode_resolver(encoded_resolver)
        if len(signature) == 0:
            return None
        return evidence_of(voucher_digest(ctx.chain_id, ctx.definition, stream_id, amount),
                           signature)
