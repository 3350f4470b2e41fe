"""Typed protocol errors.

Every rule the protocol enforces fails with one of these. Each class has a stable `code`
that crosses the wire (messaging replies, JSON API) and a readable message for the UI.
Raising one must never leave a half-applied state behind: the protocol is pure.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class: an update, signature or transfer broke a protocol rule."""

    code = "protocol_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidSignature(ProtocolError):
    code = "invalid_signature"


class InvalidUpdate(ProtocolError):
    """The update is malformed or does not fit the channel (wrong channel, type, parties)."""

    code = "invalid_update"


class StaleNonce(ProtocolError):
    """The update's nonce is not the channel's nonce + 1."""

    code = "stale_nonce"


class ChannelNotSetUp(ProtocolError):
    code = "channel_not_set_up"


class ChannelAlreadySetUp(ProtocolError):
    code = "channel_already_set_up"


class InvalidChannelAddress(ProtocolError):
    code = "invalid_channel_address"


class InsufficientBalance(ProtocolError):
    """A party tried to lock or move more than its balance in the asset."""

    code = "insufficient_balance"


class InsufficientCollateral(ProtocolError):
    """The node cannot fund its side of the recipient's channel for this payment."""

    code = "insufficient_collateral"


class InvalidAmount(ProtocolError):
    code = "invalid_amount"


class InvalidDeposit(ProtocolError):
    code = "invalid_deposit"


class TooManyAssets(ProtocolError):
    code = "too_many_assets"


class UnknownTransfer(ProtocolError):
    code = "unknown_transfer"


class DuplicateTransfer(ProtocolError):
    code = "duplicate_transfer"


class RoutingIdTaken(ProtocolError):
    """A routed payment under the routing id of another transfer: a routing id names one
    payment, made by one transfer of one sender."""

    code = "routing_id_taken"


class TransferToSelf(ProtocolError):
    code = "transfer_to_self"


class WrongResolver(ProtocolError):
    """Only a transfer's responder may resolve it."""

    code = "wrong_resolver"


class UnknownTransferDefinition(ProtocolError):
    code = "unknown_transfer_definition"


class MerkleRootMismatch(ProtocolError):
    code = "merkle_root_mismatch"


class TransferError(ProtocolError):
    """A transfer definition refused an input (the contract would revert)."""

    code = "transfer_error"


class InvalidTransferState(TransferError):
    code = "invalid_transfer_state"


class InvalidTransferResolver(TransferError):
    code = "invalid_transfer_resolver"


# --- link payments (a payment whose secret lives in a link) ---------------------------------


class InvalidLink(ProtocolError):
    """A link code that is not `0x<routing id>.0x<secret>` (32 bytes each)."""

    code = "invalid_link"

    def __init__(self, message: str = "this is not a valid payment link") -> None:
        super().__init__(message)


class UnknownLink(ProtocolError):
    """The node knows no link with this routing id."""

    code = "unknown_link"

    def __init__(self, message: str = "no such link") -> None:
        super().__init__(message)


class LinkAlreadyClaimed(ProtocolError):
    code = "link_already_claimed"

    def __init__(self, message: str = "this link was already claimed") -> None:
        super().__init__(message)


class LinkCancelled(ProtocolError):
    """The link was cancelled (or expired): its creator was refunded."""

    code = "link_cancelled"

    def __init__(self, message: str = "this link was cancelled") -> None:
        super().__init__(message)


class NotLinkCreator(ProtocolError):
    """Only the user who created a link may cancel it."""

    code = "not_link_creator"

    def __init__(self, message: str = "only the link's creator can cancel it") -> None:
        super().__init__(message)




class NotDisputed(ProtocolError):
    """Nobody disputed this channel on chain yet: there is nothing to exit from."""

    code = "not_disputed"


class DisputeWindowOpen(ProtocolError):
    """The channel's dispute is still open on chain; exiting waits until it ends."""

    code = "dispute_window_open"


class UnknownDisputedState(ProtocolError):
    """The state disputed on chain is not one we hold (we cannot prove anything from it)."""

    code = "unknown_disputed_state"


class ChannelDisputed(ProtocolError):
    """The channel is disputed on chain: it takes no more updates, only its exit."""

    code = "channel_disputed"

    def __init__(self, message: str = "this channel is being closed on chain") -> None:
        super().__init__(message)


# --- limits both sides and the node enforce --------------------------------------------------


class TimeoutOutOfBounds(ProtocolError):
    """A channel dispute window or transfer timeout outside the bounds this party accepts
    (too short to answer on chain in time, or too long to keep funds locked)."""

    code = "timeout_out_of_bounds"


class AmountBelowMinimum(ProtocolError):
    """A payment or withdrawal smaller than the node accepts (it would cost more to carry
    than it is worth)."""

    code = "amount_below_minimum"


class FeeTooLow(ProtocolError):
    """A withdrawal offers the node less than its withdrawal fee (it pays the gas)."""

    code = "fee_too_low"


# --- streams (metered micropayments) --------------------------------------------------------


class UnknownStream(ProtocolError):
    """No open stream with this id pays the recipient (or not from this payer)."""

    code = "unknown_stream"


class StreamNotOpen(ProtocolError):
    """The stream's budget is not locked in yet (the node has not answered)."""

    code = "stream_not_open"


class VoucherAboveBudget(ProtocolError):
    code = "voucher_above_budget"


class VoucherNotIncreasing(ProtocolError):
    """A voucher is cumulative: each one is for more than the last (a replay is not)."""

    code = "voucher_not_increasing"


class PaymentIdReused(ProtocolError):
    """A payment id (idempotency key) that already names another payment."""

    code = "payment_id_reused"


class RateLimited(ProtocolError):
    """Too many requests of this kind from one identity: try again later."""

    code = "rate_limited"


# --- swaps (connext/protocol/swaps.py) ----------------------------------------------------


class InvalidQuote(ProtocolError):
    """A swap quote that is malformed, or does not fit the payment that carries it."""

    code = "invalid_quote"


class QuoteAltered(InvalidQuote):
    """The quote is not the node's signature over these terms: changed after signing, or
    signed by another key."""

    code = "quote_altered"


class QuoteForeign(InvalidQuote):
    """The node signed this quote for another payer or channel."""

    code = "quote_foreign"


class QuoteExpired(InvalidQuote):
    code = "quote_expired"


class QuoteUsed(InvalidQuote):
    """A quote pays once; this one paid (or was tried) already."""

    code = "quote_used"


class UnsupportedSwap(ProtocolError):
    """The node does not swap this pair (or this asset at all)."""

    code = "unsupported_swap"


class RateUnavailable(ProtocolError):
    """The node has no fresh rate for this pair right now (its price feed is stale)."""

    code = "rate_unavailable"


def error_class(code: str) -> type[ProtocolError] | None:
    """The error class of this module with `code` (to re-raise a remote error typed)."""
    return _BY_CODE.get(code)


def _by_code() -> dict[str, type[ProtocolError]]:
    found: dict[str, type[ProtocolError]] = {}
    pending: list[type[ProtocolError]] = [ProtocolError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == __name__:
            found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


_BY_CODE = _by_code()
