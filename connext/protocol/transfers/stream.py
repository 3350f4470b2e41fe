"""Stream: metered payments against a locked budget, settled by the highest voucher.

The payer signs cumulative `Voucher(streamId, amount)` messages off the channel; resolving
with one pays min(amount, budget) to the responder and returns the rest. The voucher names
the stream, not the transfer, so one voucher resolves both hops of a routed stream.
Mirror of contracts/transfers/Stream.vy.
"""

from __future__ import annotations

from typing import Any

from ..encoding import address_bytes, voucher_digest
from ..errors import InvalidTransferResolver, InvalidTransferState
from ..types import ETH, TransferBalance
from .base import TransferContext, TransferDefinition, signer_of


class Stream(TransferDefinition):
    name = "Stream"
    contract_name = "Stream"
    state_fields = (("address", "signer"), ("bytes32", "streamId"))
    resolver_fields = (("uint256", "amount"), ("bytes", "signature"))

    @property
    def cancel_resolver(self) -> bytes:
        return self.encode_resolver(0, b"")

    def _check_initial_state(
        self, balance: TransferBalance, state: tuple[Any, ...], ctx: TransferContext
    ) -> None:
        signer, _stream_id = state
        if address_bytes(signer) == address_bytes(ETH):
            raise InvalidTransferState("Stream: the signer must not be the zero address")

    def _resolve(
        self,
        balance: TransferBalance,
        state: tuple[Any, ...],
        resolver: tuple[Any, ...],
        ctx: TransferContext,
    ) -> tuple[int, int]:
        signer, stream_id = state
        voucher_amount, signature = resolver
        if len(signature) == 0:
            return balance.amount
        digest = voucher_digest(ctx.chain_id, ctx.definition, stream_id, voucher_amount)
        if signer_of(digest, signature) != address_bytes(signer):
            raise InvalidTransferResolver("Stream: the voucher is not signed by the payer")
        paid = min(voucher_amount, balance.amount[0])
        return (balance.amount[0] - paid, balance.amount[1] + paid)
