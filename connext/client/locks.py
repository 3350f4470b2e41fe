"""Keeping a payment we were paid enforceable when the node does not countersign it.

A forward to us is a hashlock: we resolve it with the preimage, and the node countersigns.
A node that withholds its countersignature (and has learnt the preimage from our resolve)
could collect from the sender while we can never claim: the lock expires, and a transfer
can only be disputed on chain after the channel's consensus window. So when our resolve is
still not countersigned and the lock expires within `reveal_margin` seconds, we register
the preimage in the on-chain secret registry from our own account: from then on the lock
pays us on chain whenever we dispute, and an honest node accepts the resolve even after
the expiry. A lock that expired unregistered is cancelled as before (the payer is refunded).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ..chain.contracts import Sender
from ..protocol.transfers import HASHLOCK
from ..protocol.transfers.hashlock import registered_in_time
from ..protocol.types import Transfer

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger(__name__)


def enforceable(client: Client, transfer: Transfer) -> bool:
    """Whether a lock paying us can still be claimed: not expired, or its preimage was
    registered on chain by its expiry."""
    lock, expiry = HASHLOCK.decode_state(transfer.initial_state)
    if expiry == 0 or expiry > int(time.time()):
        return True
    registered = {} if client.secrets is None else client.secrets.registered
    return registered_in_time(lock, expiry, registered)


async def keep_enforceable(client: Client, transfer: Transfer, resolver: bytes) -> None:
    """Register the preimage of `transfer` (paying us, resolver in hand, not settled by
    the node) when its lock is about to expire."""
    if client.secrets is None:
        return
    lock, expiry = HASHLOCK.decode_state(transfer.initial_state)
    now = int(time.time())
    if expiry == 0 or lock in client.secrets.registered or not now < expiry:
        return
    if expiry - now > client.reveal_margin:
        return
    (preimage,) = HASHLOCK.decode_resolver(resolver)
    log.warning("payment %s is not countersigned and expires in %d s: registering its "
                "preimage on chain", transfer.transfer_id.hex(), expiry - now)
    if client.before_chain_transaction is not None:
        await client.before_chain_transaction()
    sender = Sender(client.w3, client.signer.private_key)
    call = client.secrets.register_call(preimage)
    await asyncio.to_thread(sender.transact, call)
    await client.secrets.scan()
    await client._emit("transfer.secret_registered", {
        "transferId": "0x" + transfer.transfer_id.hex(), "assetId": transfer.asset_id,
        "amount": str(transfer.balance.amount[0])})
