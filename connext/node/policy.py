"""What the node refuses to countersign beyond the protocol's rules, and its rate limits.

The protocol accepts any valid update; the node also guards its own funds and gas: a
routed payment or withdrawal below the asset's minimum, a withdrawal that does not pay the
node's withdrawal fee or whose commitment is not the one the transfer stands for, a
hashlock payment without an expiry or too close to it to be forwarded safely, and more
setups or withdrawals per identity and hour than configured are refused with a typed error
before anything is signed, so nothing is locked.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..protocol import errors
from ..protocol.channel import Applied
from ..protocol.transfers import DEFINITIONS, WITHDRAW
from ..protocol.types import Address, CreateDetails, Update, UpdateType
from ..ratelimit import SlidingWindow, TooMany
from ..store import ChannelStore
from .config import NodeConfig
from .routing import (
    RECIPIENT,
    ROUTING_ID,
    is_address,
    link_signer_of,
    routing_id_from_meta,
    routing_id_of,
)
from .withdrawals import commitment_of

if TYPE_CHECKING:
    from .swaps import SwapDesk


class RateLimit:
    """At most `per_hour` events per identity (0: unlimited); over it, `RateLimited`."""

    def __init__(self, per_hour: int, what: str) -> None:
        self.window = SlidingWindow(per_hour, what=f"{what} from this identity")

    def check(self, key: str) -> None:
        try:
            self.window.hit(key)
        except TooMany as exc:
            raise errors.RateLimited(exc.message) from None


class NodePolicy:
    def __init__(self, config: NodeConfig, definition_names: dict[Address, str],
                 address: Address, store: ChannelStore) -> None:
        self.config = config
        self.store = store
        self.definition_names = definition_names
        self.address = address
        self.setups = RateLimit(config.setups_per_hour, "channel setups")
        self.withdrawals = RateLimit(config.withdrawals_per_hour, "withdrawals")
        self.swaps: SwapDesk | None = None
        """Checks the swap quote a routed payment carries (connext/node/swaps.py)."""

    async def check(self, update: Update, applied: Applied) -> None:
        """The engine's policy hook: raise to refuse the counterparty's update."""
        details = update.details
        if update.type is not UpdateType.CREATE or not isinstance(details, CreateDetails):
            return
        transfer = applied.transfer
        assert transfer is not None
        name = self.definition_names.get(details.transfer_definition)
        limits = self.config.limits_for(details.asset_id)
        amount = details.balance.amount[0]
        if name == "Withdraw":
            commitment = commitment_of(applied.state, transfer)
            fee = WITHDRAW.decode_state(details.initial_state)[5]
            if commitment.amount < limits.min_withdrawal:
                raise errors.AmountBelowMinimum(
                    f"the node pays out withdrawals of at least {limits.min_withdrawal}")
            if fee < limits.withdrawal_fee:
                raise errors.FeeTooLow(
                    f"a withdrawal pays the node a fee of {limits.withdrawal_fee}")
            self.withdrawals.check(update.initiator)
        elif ROUTING_ID in details.meta:
            await self._check_routing_meta(update, details)
            if amount < limits.min_payment:
                raise errors.AmountBelowMinimum(
                    f"the node routes payments of at least {limits.min_payment}")
            definition = DEFINITIONS.get(name or "")
            if (definition is not None and definition.expiry_field is not None
                    and (RECIPIENT in details.meta or link_signer_of(transfer) is not None)):
                self._check_expiry(definition.expiry(details.initial_state))
            if self.swaps is not None:
                await self.swaps.check_payment(transfer, routing_id_of(transfer))

    async def _check_routing_meta(self, update: Update, details: CreateDetails) -> None:
        """A routed payment names a routing id of its own (32 bytes, not another transfer's:
        the node settles the payment with the transfer its routing record names) and, if it
        names a recipient, an address."""
        routing_id = routing_id_from_meta(details.meta)
        if routing_id is None:
            raise errors.InvalidUpdate("the routing id is not 32 bytes of 0x-hex")
        recipient = details.meta.get(RECIPIENT)
        if RECIPIENT in details.meta and not is_address(recipient):
            raise errors.InvalidUpdate("the payment's recipient is not an address")
        routing = await self.store.run(self.store.get_routing, routing_id)
        if routing is not None and (routing.sender_channel != update.channel_address
                                    or routing.sender_transfer_id != details.transfer_id):
            raise errors.RoutingIdTaken(
                f"routing id 0x{routing_id.hex()} belongs to another payment")

    def _check_expiry(self, expiry: int) -> None:
        """A routed condition must expire (else a silent sender could keep the node's
        payment to the recipient unpaid forever) and leave the reveal delta for the
        forward."""
        if expiry == 0:
            raise errors.InvalidTransferState("a routed payment must have an expiry")
        if expiry <= int(time.time()) + self.config.reveal_delta:
            raise errors.InvalidTransferState(
                f"the payment expires too soon to forward (the node needs "
                f"{self.config.reveal_delta} s before the sender's expiry)")
