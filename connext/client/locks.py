"""Keeping a conditional payment we were paid enforceable when the node does not settle it.

A forward to us (a hashlock, an oracle payment, a stream) expires. We resolve it with what
unlocks it (the preimage, the oracle's receipt, the payer's highest voucher) and the node
countersigns. A node that withholds its countersignature (having learnt our resolver)
could collect from the payer while we can never claim: the condition expires, and a
transfer can only be disputed on chain after the channel's consensus window. So when our
claim is still not settled and the condition expires within `reveal_margin` seconds, we
register its evidence in the on-chain secret registry from our own account: from then on
it pays us on chain whenever we dispute, and an honest node accepts the resolve even after
the expiry. A condition that expired unregistered is cancelled (the payer is refunded).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ..chain.contracts import Sender
from ..protocol.transfers import DEFINITIONS
from ..protocol.transfers.base import evidence_hash
from ..protocol.types import Transfer

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger(__name__)


def _evidence(client: Client, transfer: Transfer, resolver: bytes) -> bytes | None:
    definition = DEFINITIONS[client.definition_names[transfer.transfer_definition]]
    ctx = client.rules().context(client.network.chain_id, transfer.transfer_definition)
    return definition.evidence(transfer.initial_state, resolver, ctx)


def expiry_of(client: Client, transfer: Transfer) -> int:
    definition = DEFINITIONS[client.definition_names[transfer.transfer_definition]]
    return definition.expiry(transfer.initial_state)


def enforceable(client: Client, transfer: Transfer) -> bool:
    """Whether a condition paying us can still be claimed: not expired, or what we hold
    to claim it was registered on chain by its expiry."""
    expiry = expiry_of(client, transfer)
    if expiry == 0 or expiry > int(time.time()):
        return True
    resolver = client.resolver_we_hold(transfer)
    evidence = None if resolver is None else _evidence(client, transfer, resolver)
    if evidence is None or client.secrets is None:
        return False
    registered = client.secrets.registered.get(evidence_hash(evidence), 0)
    return registered != 0 and registered <= expiry


async def keep_enforceable(client: Client, transfer: Transfer, resolver: bytes) -> None:
    """Register the evidence of `resolver` (it pays us; the node has not settled it) when
    the condition is about to expire."""
    if client.secrets is None:
        return
    expiry = expiry_of(client, transfer)
    now = int(time.time())
    if expiry == 0 or not now < expiry or expiry - now > client.reveal_margin:
        return
    evidence = _evidence(client, transfer, resolver)
    if evidence is None or evidence_hash(evidence) in client.secrets.registered:
        return
    log.warning("payment %s is not settled and expires in %d s: registering its evidence "
                "on chain", transfer.transfer_id.hex(), expiry - now)
    if client.before_chain_transaction is not None:
        await client.before_chain_transaction()
    sender = Sender(client.w3, client.signer.private_key)
    await asyncio.to_thread(sender.transact, client.secrets.register_call(evidence))
    await client.secrets.scan()
    await client._emit("transfer.secret_registered", {
        "transferId": "0x" + transfer.transfer_id.hex(), "assetId": transfer.asset_id,
        "amount": str(transfer.balance.amount[0])})
