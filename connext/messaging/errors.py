"""Typed messaging errors, each with the stable code that crosses the wire.

Inbound rejections (`MalformedMessage` ... `UnknownMethod`) are what a server replies when a
message fails a check; the requester sees them as `RemoteError` with the same code. Local
failures (`MessagingTimeout`, `NoResponders`, `InvalidReply`) never cross the wire by
themselves. Messages are written for the counterparty: never put a traceback in one.
"""

from __future__ import annotations

from ..protocol.errors import ProtocolError


class MessagingError(ProtocolError):
    """Base class of everything the messaging layer raises."""

    code = "messaging_error"


# --- inbound checks: the server replies with these codes -------------------------------


class MalformedMessage(MessagingError):
    """Not JSON, not an object, missing or extra fields, wrong types, bad method name."""

    code = "malformed_message"


class MessageTooLarge(MessagingError):
    code = "message_too_large"


class InvalidEnvelopeSignature(MessagingError):
    """The envelope's signature is malformed or does not recover its `from`."""

    code = "invalid_signature"


class WrongRecipient(MessagingError):
    """The envelope's `to` is not the address of the party that received it."""

    code = "wrong_recipient"


class StaleTimestamp(MessagingError):
    """The timestamp is outside the accepted window (too old or in the future)."""

    code = "stale_timestamp"


class ReplayedMessage(MessagingError):
    code = "replayed_message"


class UnknownMethod(MessagingError):
    code = "unknown_method"


class InternalError(MessagingError):
    """A handler failed unexpectedly; the details stay in the server's log."""

    code = "internal_error"


# --- requester side ---------------------------------------------------------------------


class RemoteError(MessagingError):
    """The counterparty answered with a signed error reply; `code` is the remote code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class MessagingTimeout(MessagingError, TimeoutError):
    """No valid reply arrived in time (the counterparty may be offline or slow)."""

    code = "messaging_timeout"


class NoResponders(MessagingError):
    """Nobody is subscribed to the subject: the counterparty is not connected."""

    code = "no_responders"


class InvalidReply(MessagingError):
    """Replies arrived but none passed verification (forged, misaddressed, or not bound to
    the request), and no valid one came before the timeout."""

    code = "invalid_reply"


class NotConnected(MessagingError):
    code = "not_connected"
