"""Hashlock: pays the responder when the sha256 preimage of the lock hash is revealed.

A zero preimage cancels (the amount returns to the initiator). After its expiry a lock
still pays if its preimage was registered in the secret registry no later than the expiry;
otherwise it can only be cancelled. Mirror of contracts/transfers/Hashlock.vy.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..errors import InvalidTransferResolver, InvalidTransferState
from ..types import ZERO_HASH, TransferBalance
from .base import TransferContext, TransferDefinition, in_time


def lock_hash(preimage: bytes) -> bytes:
    return hashlib.sha256(preimage).digest()


class Hashlock(TransferDefinition):
    name = "Hashlock"
    contract_name = "Hashlock"
    state_fields = (("bytes32", "lockHash"), ("uint256", "expiry"))
    resolver_fields = (("bytes32", "preimage"),)
    expiry_field = 1

    @property
    def cancel_resolver(self) -> bytes:
        return self.encode_resolver(ZERO_HASH)

    def _check_initial_state(
        self, balance: TransferBalance, state: tuple[Any, ...], ctx: TransferContext
    ) -> None:
        lock, expiry = state
        if lock == ZERO_HASH:
            raise InvalidTransferState("Hashlock: the lock hash must not be zero")
        if expiry != 0 and expiry <= ctx.now:
            raise InvalidTransferState("Hashlock: the expiry is in the past")

    def _resolve(
        self,
        balance: TransferBalance,
        state: tuple[Any, ...],
        resolver: tuple[Any, ...],
        ctx: TransferContext,
    ) -> tuple[int, int]:
        lock, expiry = state
        (preimage,) = resolver
        if preimage == ZERO_HASH:
            return balance.amount
        if lock_hash(preimage) != lock:
            raise InvalidTransferResolver("Hashlock: wrong preimage")
        if not in_time(expiry, lock, ctx):
            raise InvalidTransferResolver("Hashlock: the payment has expired")
        return (0, balance.amount[0] + balance.amount[1])

    def evidence(self, encoded_state: bytes, encoded_resolver: bytes,
                 ctx: TransferContext) -> bytes | None:
        (preimage,) = self.decode_resolver(encoded_resolver)
        return None if preimage == ZERO_HASH else bytes(preimage)
