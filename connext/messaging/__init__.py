"""Messaging over NATS: signed envelopes, request/reply, notifications, typed error replies.

`Messaging` is the only thing the engine, node and client use; `envelope` is the pure wire
format. Nothing outside this package imports nats.
"""

from .envelope import Envelope, canonical_json, message_digest, seal
from .errors import (
    InternalError,
    InvalidEnvelopeSignature,
    InvalidReply,
    MalformedMessage,
    MessageTooLarge,
    MessagingError,
    MessagingTimeout,
    NoResponders,
    NotConnected,
    RemoteError,
    ReplayedMessage,
    StaleTimestamp,
    UnknownMethod,
    WrongRecipient,
)
from .transport import Handler, Messaging, flush_subscriptions, subject

__all__ = [
    "Envelope",
    "Handler",
    "InternalError",
    "InvalidEnvelopeSignature",
    "InvalidReply",
    "MalformedMessage",
    "MessageTooLarge",
    "Messaging",
    "MessagingError",
    "MessagingTimeout",
    "NoResponders",
    "NotConnected",
    "RemoteError",
    "ReplayedMessage",
    "StaleTimestamp",
    "UnknownMethod",
    "WrongRecipient",
    "canonical_json",
    "flush_subscriptions",
    "message_digest",
    "seal",
    "subject",
]
