"""One recovery mechanism for every transfer a party started or must answer.

After any crash, lost reply or restart, each round of `Recovery` drives the party's
channels toward a final state, the same way whatever the kind of transfer:

1. our own unsettled proposals are re-sent (their fate was unknown: the counterparty
   answers a retransmission with its stored countersigned copy, or takes it now);
2. every active transfer the party has a duty for is handed to that duty, chosen by the
   transfer's definition and the party's role in it (claim or cancel a payment to us,
   countersign a reclaim, answer a withdrawal, ...);
3. the party's follow-ups run (the node: routed payments to forward, settle or refund;
   withdrawals to execute on chain).

Duties are idempotent: they look at the stored state and do what is still missing. Every
step is on its own: a failure is logged, counted and retried next round, and never keeps
the other transfers waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from ..chain.scanning import every
from ..messaging import MessagingTimeout, NoResponders, NotConnected
from ..protocol import errors
from ..protocol.types import Address, Transfer
from .engine import ChannelEngine

log = logging.getLogger(__name__)

Duty = Callable[[Transfer], Awaitable[None]]
"""Drive one active transfer a step further (it is active when called)."""

INITIATOR, RESPONDER = "initiator", "responder"

_NOT_NOW = (MessagingTimeout, NoResponders, NotConnected, TimeoutError, errors.StaleNonce,
            errors.UnknownTransfer)
"""Outcomes of a step that say "later" (or "done meanwhile"), not "broken"."""


class Recovery:
    def __init__(
        self,
        engine: ChannelEngine,
        *,
        pending_channels: Callable[[], Awaitable[Sequence[Address]]],
        transfers: Callable[[], Awaitable[Sequence[Transfer]]],
        duties: Mapping[tuple[str, str], Duty],
        definition_names: Mapping[Address, str],
        follow_ups: Sequence[Callable[[], Awaitable[object]]] = (),
        interval: float = 1.0,
        on_failure: Callable[[str], None] = lambda step: None,
    ) -> None:
        """`pending_channels`: channels where we may have an unsettled proposal;
        `transfers`: the active transfers to look at; `duties`: by (definition name,
        our role); `follow_ups`: what else a round runs, each on its own."""
        self.engine = engine
        self.pending_channels = pending_channels
        self.transfers = transfers
        self.duties = duties
        self.definition_names = definition_names
        self.follow_ups = follow_ups
        self.interval = interval
        self.on_failure = on_failure
        self._busy: set[bytes] = set()

    async def run(self) -> None:
        await every(self.interval, self.round, "recovery")

    async def round(self) -> None:
        for channel_address in await self.pending_channels():
            await self._step("pending", self._finish, channel_address)
        for transfer in await self.transfers():
            duty = self.duties.get((self.definition_names.get(transfer.transfer_definition, ""),
                                    self._role(transfer)))
            if duty is not None and transfer.transfer_id not in self._busy:
                self._busy.add(transfer.transfer_id)
                try:
                    await self._step("transfer", duty, transfer)
                finally:
                    self._busy.discard(transfer.transfer_id)
        for follow_up in self.follow_ups:
            await self._step("follow-up", follow_up)

    def _role(self, transfer: Transfer) -> str:
        return INITIATOR if transfer.initiator == self.engine.address else RESPONDER

    async def _finish(self, channel_address: Address) -> None:
        if channel_address not in self.engine.disputed:
            await self.engine.finish_pending(channel_address)

    async def _step(self, what: str, step: Callable[..., Awaitable[object]],
                    *args: object) -> None:
        try:
            await step(*args)
        except asyncio.CancelledError:
            raise
        except _NOT_NOW as exc:
            log.debug("recovery %s: not now (%s)", what, exc)
        except Exception:
            log.exception("recovery %s failed; retrying next round", what)
            self.on_failure(what)
