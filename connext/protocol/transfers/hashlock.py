"""Hashlock: pays the responder when the sha256 preimage of the lock hash is revealed.

A zero preimage cancels (the amount returns to the initiator). After its expiry a lock
still pays if its preimage was registered in the secret registry no later than the expiry;
otherwise it can only be cancelled. Mirror of contracts/transfers/Hashlock.vy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidTransferResolver, InvalidTransferState
from ..types import ZERO_HASH, TransferBalance
from .base import TransferContext, TransferDefinition


def lock_hash(preimage: bytes) -> bytes:
    return hashlib.sha256(preimage).digest()


def registered_in_time(lock: bytes, expiry: int, registered: Mapping[bytes, int]) -> bool:
    """Whether the lock's preimage was registered on chain no later than its expiry
    (`registered`: lock hash -> block time of registration)."""
    at = registered.get(lock, 0)
    return at != 0 and (expiry == 0 or at <= expiry)


class Hashlock(TransferDefinition):
    name = "Hashlock"
    contract_name = "Hashlock"
    state_fields = (("bytes32", "lockHash"), ("uint256", "expiry"))
    resolver_fields = (("bytes32", "preimage"),)

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
        if (expiry != 0 and expiry <= ctx.now
                and not registered_in_time(lock, expiry, ctx.registered)):
            raise InvalidTransferResolver("Hashlock: the payment has expired")
        return (0, balance.amount[0] + balance.amount[1])
