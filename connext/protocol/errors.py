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
