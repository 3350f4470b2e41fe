"""Swap quotes the node took a payment with: a quote pays once. The row is written before
the node countersigns the payment that carries the quote, so no second payment (in any
node process sharing the database) can use it.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from sqlalchemy import bindparam, select

from ..protocol.serialization import hexb
from ..protocol.types import Address
from . import schema as db
from .base import StoreBase, _dumps, _now

_QUOTE_BY_ID = select(db.swap_quotes).where(
    db.swap_quotes.c.quote_id == bindparam("p_quote_id"))


class QuoteRecords(StoreBase):
    """The quotes used, by quote id (the node's swap books beside the routings)."""

    def use_quote(self, quote_id: bytes, *, channel_address: Address, transfer_id: bytes,
                  routing_id: bytes | None, quote: dict[str, Any]) -> bool:
        """Mark the quote used by this transfer: True when it is now (or was already) used
        by exactly this transfer of this channel, False when another payment used it."""
        with self._write() as conn:
            inserted = conn.execute(self._insert_quote_statement, {
                "quote_id": hexb(quote_id), "channel_address": channel_address,
                "transfer_id": hexb(transfer_id),
                "routing_id": None if routing_id is None else hexb(routing_id),
                "quote_json": _dumps(quote), "used_at": _now(),
            }).first() is not None
            if inserted:
                return True
            row = conn.execute(_QUOTE_BY_ID, {"p_quote_id": hexb(quote_id)}).one()
        return bool(row.channel_address == channel_address
                    and row.transfer_id == hexb(transfer_id))

    def quote_use(self, quote_id: bytes) -> dict[str, Any] | None:
        """The use of a quote: {channelAddress, transferId, routingId, quote, usedAt}."""
        with self._read() as conn:
            row = conn.execute(_QUOTE_BY_ID, {"p_quote_id": hexb(quote_id)}).one_or_none()
        if row is None:
            return None
        return {"channelAddress": row.channel_address, "transferId": row.transfer_id,
                "routingId": row.routing_id, "quote": json.loads(row.quote_json),
                "usedAt": row.used_at}

    @functools.cached_property
    def _insert_quote_statement(self) -> Any:
        return (self._insert(db.swap_quotes).on_conflict_do_nothing()
                .returning(db.swap_quotes.c.quote_id))
