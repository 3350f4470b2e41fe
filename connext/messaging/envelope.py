"""Signed message envelopes: the wire format, its EIP-712 digest, and reply bodies.

Pure: no I/O, no clock, no randomness (ids and timestamps are passed in). Parsing is strict
(exact fields, exact types) and raises typed errors; it must never produce an envelope whose
signed digest covers anything other than what a handler will read.

Wire: a JSON object `{"id","from","to","method","body","timestamp","signature"}`; `id` (16
bytes) and `signature` (65 bytes) are 0x-hex, addresses 0x-hex in any case, `timestamp` is
unix milliseconds as a JSON integer, `body` a JSON object. Signed: EIP-712 under the domain
{"Connext Message", "1", chainId (0 unless both sides are configured with another), zero
address} over `Message(bytes16 id,address from,address to,string method,bytes32 bodyHash,
uint256 timestamp)`, with `bodyHash = keccak(canonical_json(body))`.

A payload-signed message goes without an envelope signature: its `signature` is 65 zero
bytes (`UNSIGNED`). Only a method its server registered as payload-signed is admitted so
(a channel update, whose body is the initiator's signed update) and only the successful
reply to it (the countersigned update): the receiver authenticates the payload instead, and
such a method must be harmless to replay. Every other message, error replies included, is
signed.

A reply is an envelope from the responder to the requester (the zero address if the request
was unreadable) with method `<method>.reply` (`error.reply` if the method was unreadable) and
body `{"requestHash": ..., "result": {...}}` or `{"requestHash": ..., "error": {"code": ...,
"message": ...}}`, where `requestHash` is 0x-hex keccak of the request's exact wire bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..protocol.encoding import (
    MESSAGE_DOMAIN,
    address_bytes,
    address_word,
    checksum,
    domain_separator,
    keccak,
    typed_data_digest,
    uint_word,
)
from ..protocol.errors import InvalidSignature
from ..protocol.serialization import compact_json
from ..protocol.signing import Signer, recover_address_bytes
from ..protocol.types import Address
from .errors import InvalidEnvelopeSignature, MalformedMessage, MessageTooLarge

MESSAGE_TYPE = (
    "Message(bytes16 id,address from,address to,string method,bytes32 bodyHash,"
    "uint256 timestamp)"
)
MESSAGE_TYPEHASH = keccak(MESSAGE_TYPE.encode())
ZERO_ADDRESS: Address = "0x0000000000000000000000000000000000000000"
DEFAULT_CHAIN_ID = 0
ID_BYTES = 16
MAX_METHOD_LENGTH = 64
MAX_TIMESTAMP_MS = 2**53 - 1  # the largest integer every JSON reader keeps exactly

# Dotted lowercase words; each word becomes one NATS subject token, so none may be empty.
_METHOD = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")
_FIELDS = frozenset(("id", "from", "to", "method", "body", "timestamp", "signature"))
_HEX = re.compile(r"0x[0-9a-fA-F]*")

UNSIGNED = bytes(65)
"""The signature of a payload-signed message (the payload carries its authentication)."""

REPLY_SUFFIX = ".reply"
# Stands in for the method of a request whose own method could not be read.
UNREADABLE_REQUEST_METHOD = "error"


@dataclass(frozen=True, slots=True)
class Envelope:
    """A signed message. `sender` is the wire's `from` (a Python keyword); `body_hash` is
    keccak of the body's canonical JSON, the value the signature commits to (empty when
    `unsigned`)."""

    id: bytes
    sender: Address
    to: Address
    method: str
    body: dict[str, Any]
    body_hash: bytes
    timestamp: int
    signature: bytes

    @property
    def unsigned(self) -> bool:
        """A payload-signed message: nothing vouches for `sender` but the payload."""
        return self.signature == UNSIGNED

    def digest(self, chain_id: int = DEFAULT_CHAIN_ID) -> bytes:
        return message_digest(
            self.id, self.sender, self.to, self.method, self.body_hash, self.timestamp, chain_id
        )


def is_valid_method(method: object) -> bool:
    return (
        isinstance(method, str)
        and len(method) <= MAX_METHOD_LENGTH
        and _METHOD.fullmatch(method) is not None
    )


def canonical_json(body: dict[str, Any]) -> bytes:
    """The bytes `bodyHash` commits to: sorted keys, no spaces, UTF-8, no NaN/Infinity."""
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def message_digest(
    message_id: bytes,
    sender: Address,
    to: Address,
    method: str,
    body_hash: bytes,
    timestamp: int,
    chain_id: int = DEFAULT_CHAIN_ID,
) -> bytes:
    """The EIP-712 digest of a `Message`."""
    struct_hash = keccak(
        MESSAGE_TYPEHASH
        + message_id.ljust(32, b"\x00")  # a bytesN value is left-aligned in its word
        + address_word(sender)
        + address_word(to)
        + keccak(method.encode())
        + body_hash
        + uint_word(timestamp)
    )
    return typed_data_digest(domain_separator(MESSAGE_DOMAIN, chain_id, ZERO_ADDRESS), struct_hash)


def seal(
    signer: Signer,
    to: Address,
    method: str,
    body: dict[str, Any],
    *,
    message_id: bytes,
    timestamp: int,
    chain_id: int = DEFAULT_CHAIN_ID,
) -> Envelope:
    """A new envelope signed by `signer`. ValueError/TypeError on a bad method, id or body."""
    if not is_valid_method(method):
        raise ValueError(f"invalid method name {method!r}: use dotted lowercase words")
    if len(message_id) != ID_BYTES:
        raise ValueError("a message id is 16 bytes")
    if not 0 <= timestamp <= MAX_TIMESTAMP_MS:
        raise ValueError("timestamp out of range")
    body_hash = keccak(canonical_json(body))
    to = checksum(to)
    digest = message_digest(
        message_id, signer.address, to, method, body_hash, timestamp, chain_id
    )
    return Envelope(
        message_id, signer.address, to, method, body, body_hash, timestamp, signer.sign(digest)
    )


def unsigned(sender: Address, to: Address, method: str, body: dict[str, Any], *,
             message_id: bytes, timestamp: int) -> Envelope:
    """A payload-signed envelope (see the module's doc): no signature, no body hash."""
    if not is_valid_method(method):
        raise ValueError(f"invalid method name {method!r}: use dotted lowercase words")
    return Envelope(message_id, sender, checksum(to), method, body, b"", timestamp, UNSIGNED)


def to_json(envelope: Envelope) -> dict[str, Any]:
    return {
        "id": "0x" + envelope.id.hex(),
        "from": envelope.sender,
        "to": envelope.to,
        "method": envelope.method,
        "body": envelope.body,
        "timestamp": envelope.timestamp,
        "signature": "0x" + envelope.signature.hex(),
    }


def encode(envelope: Envelope) -> bytes:
    """The wire bytes of an envelope."""
    return compact_json(to_json(envelope))


# --- parsing ----------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# json's C parser recurses once per nesting level, and eth-account (py_ecc) raises the
# recursion limit to 100000, so "[[[[..." would overflow the C stack and kill the process
# before any RecursionError. Depth is therefore bounded before parsing.
MAX_JSON_DEPTH = 32
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_STRING = re.compile(rb'"[^"]*"')


def json_depth_within(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """False if the UTF-8 JSON text `raw` nests arrays/objects deeper than 2 * `limit` or its
    brackets do not balance outside strings; True for any depth up to `limit`. Linear time
    (at most `limit` passes), no recursion."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return True
    # Drop escaped backslashes and quotes, keep only quotes and brackets, drop strings:
    # what is left is the bracket skeleton. Each pass removes one or two levels of it.
    skeleton = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = _STRING.sub(b"", skeleton.translate(None, _NOT_STRUCTURE))
    for _ in range(limit):
        if not skeleton:
            return True
        reduced = skeleton.replace(b"[]", b"").replace(b"{}", b"")
        if len(reduced) == len(skeleton):
            return False  # unbalanced or a stray quote: not JSON anyway
        skeleton = reduced
    return not skeleton


def parse_json(raw: bytes, max_bytes: int) -> Any:
    """The JSON value in the UTF-8 text `raw`; MessageTooLarge before parsing anything bigger
    than allowed, MalformedMessage for anything else that is not sane JSON."""
    if len(raw) > max_bytes:
        raise MessageTooLarge(f"the message is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise MalformedMessage("not UTF-8") from None
    if not json_depth_within(raw):
        raise MalformedMessage(f"not JSON, or nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedMessage(f"not valid JSON ({type(exc).__name__})") from None


def parse_hex_field(data: dict[str, Any], name: str, length: int) -> bytes:
    value = data[name]
    if (
        not isinstance(value, str)
        or len(value) != 2 + 2 * length
        or _HEX.fullmatch(value) is None
    ):
        raise MalformedMessage(f"{name}: expected 0x-prefixed hex of {length} bytes")
    return bytes.fromhex(value[2:])


def envelope_from_json(data: Any) -> Envelope:
    """An Envelope from a parsed JSON value with exactly the envelope's fields and types.
    The signature is not checked here (see `verify_sender`)."""
    if not isinstance(data, dict):
        raise MalformedMessage("a message is a JSON object")
    if data.keys() != _FIELDS:
        missing = sorted(_FIELDS - data.keys())
        unexpected = sorted(data.keys() - _FIELDS)
        raise MalformedMessage(f"envelope fields: missing {missing}, unexpected {unexpected}")
    message_id = parse_hex_field(data, "id", ID_BYTES)
    sender = parse_hex_field(data, "from", 20)
    to = parse_hex_field(data, "to", 20)
    signature = parse_hex_field(data, "signature", 65)
    method = data["method"]
    if not is_valid_method(method):
        raise MalformedMessage("method: expected dotted lowercase words of [a-z0-9_]")
    body = data["body"]
    if not isinstance(body, dict):
        raise MalformedMessage("body: expected a JSON object")
    timestamp = data["timestamp"]
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise MalformedMessage("timestamp: expected an integer (unix milliseconds)")
    if not 0 <= timestamp <= MAX_TIMESTAMP_MS:
        raise MalformedMessage("timestamp: out of range")
    body_hash = b""  # what a signature commits to: a payload-signed message has none
    if signature != UNSIGNED:
        try:
            body_hash = keccak(canonical_json(body))
        except (ValueError, RecursionError):
            raise MalformedMessage("body: has no canonical form") from None
    return Envelope(
        message_id, checksum(sender), checksum(to), method, body, body_hash, timestamp, signature
    )


def decode(raw: bytes, max_bytes: int) -> Envelope:
    """Parse wire bytes into an (unverified) Envelope."""
    return envelope_from_json(parse_json(raw, max_bytes))


def verify_sender(envelope: Envelope, chain_id: int = DEFAULT_CHAIN_ID) -> None:
    """InvalidEnvelopeSignature unless the signature recovers the envelope's `from`."""
    if envelope.unsigned:
        raise InvalidEnvelopeSignature("the message is not signed")
    try:
        recovered = recover_address_bytes(envelope.digest(chain_id), envelope.signature)
    except InvalidSignature as exc:
        raise InvalidEnvelopeSignature(f"the message signature is invalid: {exc.message}") from None
    if recovered != address_bytes(envelope.sender):
        raise InvalidEnvelopeSignature("the message is not signed by its sender")


# --- replies ----------------------------------------------------------------------------


def reply_method(request_method: str | None) -> str:
    """`<method>.reply`; `error.reply` when the request's method could not be read."""
    return (request_method or UNREADABLE_REQUEST_METHOD) + REPLY_SUFFIX


def request_hash(raw: bytes) -> bytes:
    """What a reply quotes to say which request it answers: keccak of the request's exact
    wire bytes (so it commits to the request's id, and cannot be moved to another one)."""
    return keccak(raw)


def result_body(request: bytes, result: dict[str, Any]) -> dict[str, Any]:
    return {"requestHash": "0x" + request.hex(), "result": result}


def error_body(request: bytes, code: str, message: str) -> dict[str, Any]:
    return {"requestHash": "0x" + request.hex(), "error": {"code": code, "message": message}}


def reply_outcome(body: dict[str, Any], request: bytes) -> dict[str, Any] | tuple[str, str]:
    """A reply body's result, or its error as (code, message). MalformedMessage if the body
    does not quote the request hash `request` or has neither shape."""
    if body.get("requestHash") != "0x" + request.hex():
        raise MalformedMessage("the reply does not answer this request")
    if body.keys() == {"requestHash", "result"} and isinstance(body["result"], dict):
        result: dict[str, Any] = body["result"]
        return result
    if body.keys() == {"requestHash", "error"}:
        error = body["error"]
        if (
            isinstance(error, dict)
            and error.keys() == {"code", "message"}
            and isinstance(error["code"], str)
            and isinstance(error["message"], str)
        ):
            return error["code"], error["message"]
    raise MalformedMessage("a reply body is {requestHash, result} or {requestHash, error}")
