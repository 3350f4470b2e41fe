"""The checks every inbound message passes before any handler sees it.

Pure apart from the replay cache it owns (the caller passes the time in). Checks run
cheapest first: size, JSON, envelope shape, subject, recipient, timestamp window, signature,
replay, method. It must never record an id before the signature is verified, or a forger
could make a genuine message look like a replay. A payload-signed message (no envelope
signature) is admitted only for a method served as payload-signed, and is not recorded:
its handler authenticates the payload, and such a method is harmless to replay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Container
from typing import Any

from ..protocol.encoding import address_bytes, checksum
from ..protocol.types import Address
from . import envelope as env
from .errors import (
    MalformedMessage,
    MessageTooLarge,
    StaleTimestamp,
    UnknownMethod,
    WrongRecipient,
)
from .replay import ReplayCache


class InboundChecks:
    """Admits inbound messages for one address; owns that address's replay cache."""

    def __init__(
        self,
        address: Address,
        *,
        max_bytes: int,
        window_ms: int,
        chain_id: int = env.DEFAULT_CHAIN_ID,
        replay_cache_size: int = 100_000,
    ) -> None:
        self.address = checksum(address)
        self.max_bytes = max_bytes
        self.window_ms = window_ms
        self.chain_id = chain_id
        self.replays = ReplayCache(window_ms, replay_cache_size)

    def admit(
        self, raw: bytes, subject_rest: str, now_ms: int, methods: Container[str],
        payload_signed: Container[str] = (),
    ) -> env.Envelope:
        """The verified envelope in `raw`, received on a subject ending in `subject_rest`;
        raises the MessagingError of the first check that fails. `subject_rest` is the
        subject after `connext.<us>.`: the sender's lowercase address, a dot, the method.
        `payload_signed`: the methods admitted without an envelope signature."""
        envelope = env.decode(raw, self.max_bytes)
        sender, _, method = subject_rest.partition(".")
        if envelope.method != method:
            raise MalformedMessage("the message's method does not match its subject")
        if envelope.sender.lower() != sender:
            raise MalformedMessage("the message's sender does not match its subject")
        if envelope.to != self.address:
            raise WrongRecipient(f"this message is for {envelope.to}, not {self.address}")
        if abs(now_ms - envelope.timestamp) > self.window_ms:
            raise StaleTimestamp(
                f"the timestamp is {(envelope.timestamp - now_ms) / 1000:+.1f}s from this "
                f"party's clock; at most {self.window_ms / 1000:g}s is accepted"
            )
        if envelope.unsigned and envelope.method in payload_signed:
            return envelope  # its handler checks the payload's signature
        env.verify_sender(envelope, self.chain_id)
        self.replays.admit(replay_key(envelope), envelope.timestamp, now_ms)
        if envelope.method not in methods:
            raise UnknownMethod(f"{self.address} does not serve {envelope.method!r}")
        return envelope


def replay_key(envelope: env.Envelope) -> bytes:
    """What the replay cache remembers of a message: its sender and id."""
    return address_bytes(envelope.sender) + envelope.id


def reply_context(raw: bytes, max_bytes: int) -> tuple[Address, str | None]:
    """Best effort, for an error reply to a message that failed a check: whom to address
    (the claimed `from`, else the zero address) and the request's method, if readable."""
    try:
        data: Any = env.parse_json(raw, max_bytes)
    except (MalformedMessage, MessageTooLarge):
        return env.ZERO_ADDRESS, None
    if not isinstance(data, dict):
        return env.ZERO_ADDRESS, None
    sender = env.ZERO_ADDRESS
    if "from" in data:
        with contextlib.suppress(MalformedMessage):
            sender = checksum(env.parse_hex_field(data, "from", 20))
    method = data.get("method")
    return sender, method if env.is_valid_method(method) else None
