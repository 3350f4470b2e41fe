"""What became of a payment: idempotency keys, outcomes read from the store, link secrets.

A payment a caller names with a `payment_id` (any string or bytes of its choosing) gets a
routing id derived from it and from our address, so calling again with the same key finds
the same payment instead of paying twice. Its outcome is read from our own store, never
guessed: our transfer to the node resolved with the payment (completed) or back to us
(cancelled), still active or still our unsettled proposal (pending), or never made
(unknown). A link's secret is derived from our key and its routing id, so it is never
lost: it exists as soon as the link's routing id does (our proposal is stored before it is
sent), and `links()` can always show a link's code again.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from typing import TYPE_CHECKING

from ..protocol import errors
from ..protocol.encoding import address_bytes, keccak
from ..protocol.identifiers import sender_transfer_id
from ..protocol.types import CreateDetails, Transfer, TransferBalance

if TYPE_CHECKING:
    from .client import Client

COMPLETED, CANCELLED, PENDING, UNKNOWN = "completed", "cancelled", "pending", "unknown"


def routing_id_for(client: Client, payment_id: str | bytes) -> bytes:
    """The routing id of the payment the caller named `payment_id` (one per key)."""
    key = payment_id.encode() if isinstance(payment_id, str) else bytes(payment_id)
    if not key:
        raise errors.InvalidUpdate("a payment id must not be empty")
    return keccak(b"connext-payment-id" + address_bytes(client.address) + keccak(key))


transfer_id_of = sender_transfer_id
"""Our transfer's id for a routed payment: derived from its routing id."""


def link_secret(client: Client, routing_id: bytes) -> bytes:
    """The secret of our link with this routing id: derived from our key (so only we can
    know it) and valid as a link key (see `link_key`)."""
    from .client import _link_key_bytes

    for counter in itertools.count():
        secret = hmac.new(client.signer.private_key,
                          b"connext-link-secret" + routing_id + counter.to_bytes(4, "big"),
                          hashlib.sha256).digest()
        if _link_key_bytes(secret) is not None:
            return secret
    raise AssertionError("unreachable")  # pragma: no cover


async def ours(client: Client, transfer_id: bytes) -> tuple[Transfer, str] | None:
    """Our transfer with this id, as created, with its outcome; None if we never signed
    it. An unsettled proposal of ours counts (its fate is not known yet: pending)."""
    record = await client.store.run(client.store.transfer_record, transfer_id,
                                    channel_address=client.channel_address)
    if record is not None and record.transfer.initiator == client.address:
        created = record.transfer
        if record.created_balance is not None:
            created = _with_balance(created, record.created_balance)
        if record.active:
            return created, PENDING
        paid = record.transfer.balance.amount[1] > 0
        return created, COMPLETED if paid else CANCELLED
    stored = await client.engine.channel(client.channel_address)
    pending = None if stored is None else stored.pending_update
    if pending is not None and isinstance(pending.details, CreateDetails) \
            and pending.details.transfer_id == transfer_id:
        details = pending.details
        return Transfer(
            channel_address=client.channel_address, transfer_id=transfer_id,
            transfer_definition=details.transfer_definition, initiator=client.address,
            responder=client.node_address, asset_id=details.asset_id,
            balance=details.balance, transfer_timeout=details.transfer_timeout,
            initial_state=details.initial_state, channel_nonce=pending.nonce,
            meta=details.meta), PENDING
    return None


def check_same_terms(existing: Transfer, asset_id: str, amount: int,
                     meta: dict[str, object]) -> None:
    """A payment id names one payment: its asset, amount and recipient (or link)."""
    if (existing.asset_id != asset_id or existing.balance.amount[0] != amount
            or existing.meta.get("recipient") != meta.get("recipient")
            or ("link" in existing.meta) != ("link" in meta)):
        raise errors.PaymentIdReused(
            "this payment id was already used for another payment (other asset, amount or "
            "recipient); use a new id for a new payment")


def _with_balance(transfer: Transfer, balance: TransferBalance) -> Transfer:
    from dataclasses import replace

    return replace(transfer, balance=balance)
