"""Envelopes: the digest equals eth-account's EIP-712 reference, parsing is strict, and the
signature covers every field a handler reads."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from connext.messaging import envelope as env
from connext.messaging.errors import (
    InvalidEnvelopeSignature,
    MalformedMessage,
    MessageTooLarge,
)
from connext.protocol.signing import Signer

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12,
)
bodies = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
methods = st.from_regex(r"[a-z0-9_]{1,10}(\.[a-z0-9_]{1,10}){0,3}", fullmatch=True)

ALICE = Signer(b"\x11" * 32)
BOB = Signer(b"\x22" * 32)
MESSAGE_FIELDS = [
    {"name": "id", "type": "bytes16"},
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "method", "type": "string"},
    {"name": "bodyHash", "type": "bytes32"},
    {"name": "timestamp", "type": "uint256"},
]


def reference_digest(chain_id: int, message: dict[str, Any]) -> bytes:
    signable = encode_typed_data(full_message={
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Message": MESSAGE_FIELDS,
        },
        "primaryType": "Message",
        "domain": {"name": "Connext Message", "version": "1", "chainId": chain_id,
                   "verifyingContract": "0x" + "00" * 20},
        "message": message,
    })
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sealed(body: dict[str, Any] | None = None, **overrides: Any) -> env.Envelope:
    args: dict[str, Any] = {"message_id": b"\x07" * 16, "timestamp": 1_700_000_000_000}
    args.update(overrides)
    return env.seal(ALICE, BOB.address, "channel.setup", body or {"amount": "5"}, **args)


def wire(envelope: env.Envelope, **changes: Any) -> bytes:
    data = env.to_json(envelope)
    data.update(changes)
    return json.dumps(data).encode()


@settings(max_examples=80, deadline=None)
@given(message_id=st.binary(min_size=16, max_size=16), sender=addresses, to=addresses,
       method=methods, body=bodies, timestamp=st.integers(0, env.MAX_TIMESTAMP_MS),
       chain_id=st.sampled_from([0, 1, 31337]))
def test_message_digest_equals_eth_account_reference(
    message_id: bytes, sender: str, to: str, method: str, body: dict[str, Any],
    timestamp: int, chain_id: int,
) -> None:
    body_hash = keccak(env.canonical_json(body))
    expected = reference_digest(chain_id, {
        "id": message_id, "from": sender, "to": to, "method": method,
        "bodyHash": body_hash, "timestamp": timestamp,
    })
    assert env.message_digest(message_id, sender, to, method, body_hash, timestamp,
                              chain_id) == expected


@settings(max_examples=40, deadline=None)
@given(body=bodies, method=methods)
def test_sealed_envelope_survives_the_wire_and_verifies(body: dict[str, Any], method: str) -> None:
    sent = env.seal(ALICE, BOB.address.lower(), method, body, message_id=b"\x01" * 16,
                    timestamp=123)
    received = env.decode(env.encode(sent), 256 * 1024)
    assert received == sent
    env.verify_sender(received)


def test_canonical_json_ignores_key_order_and_whitespace() -> None:
    assert env.canonical_json({"b": 1, "a": {"d": "é", "c": [1, 2]}}) == (
        '{"a":{"c":[1,2],"d":"é"},"b":1}'.encode()
    )
    original = sealed({"z": "1", "a": ["x", {"k": "v", "b": None}]})
    data = env.to_json(original)
    reordered = {key: data[key] for key in reversed(list(data))}
    reordered["body"] = {"a": [" x".strip(), {"b": None, "k": "v"}], "z": "1"}
    assert env.decode(json.dumps(reordered, indent=2).encode(), 10**6) == original


@pytest.mark.parametrize("field, value", [
    ("id", "0x" + "08" * 16),
    ("from", BOB.address),
    ("to", ALICE.address),
    ("method", "channel.setup_other"),
    ("body", {"amount": "6"}),
    ("timestamp", 1_700_000_000_001),
])
def test_changing_any_signed_field_breaks_the_signature(field: str, value: Any) -> None:
    tampered = env.decode(wire(sealed(), **{field: value}), 10**6)
    with pytest.raises(InvalidEnvelopeSignature):
        env.verify_sender(tampered)


def test_signature_under_another_chain_id_does_not_verify() -> None:
    on_mainnet = sealed(chain_id=1)
    env.verify_sender(on_mainnet, chain_id=1)
    with pytest.raises(InvalidEnvelopeSignature):
        env.verify_sender(on_mainnet)


def test_garbage_signature_is_an_invalid_signature_not_a_crash() -> None:
    for signature in ("0x" + "00" * 65, "0x" + "ff" * 65, "0x" + "ab" * 64 + "1b"):
        with pytest.raises(InvalidEnvelopeSignature):
            env.verify_sender(env.decode(wire(sealed(), signature=signature), 10**6))


@pytest.mark.parametrize("raw", [
    b"not json",
    b"\xff\xfe",
    b"[1, 2]",
    b'"a string"',
    b"[" * 100_000,
    b'{"a":' * 50_000,
])
def test_non_json_and_non_objects_are_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        env.decode(raw, 10**6)


@pytest.mark.parametrize("changes", [
    {"id": "0x" + "07" * 15},
    {"id": "07" * 16},
    {"id": "0x" + "zz" * 16},
    {"id": "0x" + "07 " * 15 + "07"},
    {"from": "0x1234"},
    {"to": None},
    {"method": "Channel.Setup"},
    {"method": "channel..setup"},
    {"method": ".setup"},
    {"method": "a" * 65},
    {"method": 5},
    {"body": [1, 2]},
    {"body": "{}"},
    {"timestamp": "1700000000000"},
    {"timestamp": True},
    {"timestamp": 1.5},
    {"timestamp": -1},
    {"timestamp": 2**53},
    {"signature": "0x" + "00" * 64},
    {"extra": 1},
])
def test_wrong_field_types_and_extra_fields_are_malformed(changes: dict[str, Any]) -> None:
    with pytest.raises(MalformedMessage):
        env.decode(wire(sealed(), **changes), 10**6)


def test_missing_fields_are_malformed() -> None:
    for name in ("id", "from", "to", "method", "body", "timestamp", "signature"):
        data = env.to_json(sealed())
        del data[name]
        with pytest.raises(MalformedMessage, match=name):
            env.decode(json.dumps(data).encode(), 10**6)


def test_nan_and_infinity_are_not_json() -> None:
    for value in (float("nan"), float("inf"), float("-inf")):
        raw = wire(sealed(), body={"amount": value})
        assert b"NaN" in raw or b"Infinity" in raw
        with pytest.raises(MalformedMessage):
            env.decode(raw, 10**6)


def test_a_message_over_the_limit_is_too_large_before_it_is_parsed() -> None:
    raw = wire(sealed())
    assert env.decode(raw, len(raw)) == sealed()
    with pytest.raises(MessageTooLarge):
        env.decode(raw, len(raw) - 1)
    with pytest.raises(MessageTooLarge):
        env.decode(b"x" * 1000, 999)


def test_seal_refuses_bad_method_names_and_ids() -> None:
    with pytest.raises(ValueError):
        env.seal(ALICE, BOB.address, "Bad-Method", {}, message_id=b"\x00" * 16, timestamp=1)
    with pytest.raises(ValueError):
        env.seal(ALICE, BOB.address, "ok", {}, message_id=b"\x00" * 15, timestamp=1)
    with pytest.raises(ValueError):
        env.seal(ALICE, BOB.address, "ok", {"x": float("nan")}, message_id=b"\x00" * 16,
                 timestamp=1)


def test_reply_outcome_binds_the_reply_to_the_exact_request_bytes() -> None:
    request = env.encode(sealed())
    quoted = env.request_hash(request)
    assert quoted == keccak(request)
    assert env.reply_outcome(env.result_body(quoted, {"ok": True}), quoted) == {"ok": True}
    assert env.reply_outcome(env.error_body(quoted, "stale_nonce", "behind"), quoted) == (
        "stale_nonce", "behind"
    )
    other = env.request_hash(request + b" ")
    with pytest.raises(MalformedMessage):
        env.reply_outcome(env.result_body(other, {"ok": True}), quoted)
    with pytest.raises(MalformedMessage):
        env.reply_outcome({"result": {"ok": True}}, quoted)
    with pytest.raises(MalformedMessage):
        env.reply_outcome({"requestHash": "0x" + quoted.hex(), "result": [1]}, quoted)
    with pytest.raises(MalformedMessage):
        env.reply_outcome({"requestHash": "0x" + quoted.hex(),
                           "error": {"code": 1, "message": ""}}, quoted)
    with pytest.raises(MalformedMessage):
        env.reply_outcome({**env.result_body(quoted, {}), "error": {"code": "x",
                                                                    "message": "y"}}, quoted)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


tricky_text = st.text(alphabet='[]{}"\\ab\n', max_size=8)
nested_values = st.recursive(
    st.none() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=nested_values, limit=st.integers(0, 6), ascii=st.booleans())
def test_depth_bound_accepts_shallow_json_and_refuses_deep_json(
    value: Any, limit: int, ascii: bool
) -> None:
    raw = json.dumps(value, ensure_ascii=ascii).encode()
    within = env.json_depth_within(raw, limit)
    if depth(value) <= limit:
        assert within
    if depth(value) > 2 * limit:
        assert not within


def test_deep_nesting_is_refused_even_where_the_recursion_limit_is_huge() -> None:
    """eth-account raises the limit to 100000; json's C parser would then overflow the C
    stack on "[[[[..." and kill the process instead of raising RecursionError."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, 100_000))
    try:
        for raw in (b"[" * 200_000, b"[" * 100_000 + b"]" * 100_000,
                    wire(sealed(), body={"a": json.loads("[" * 100 + "]" * 100)})):
            with pytest.raises(MalformedMessage):
                env.decode(raw, 10**6)
        nested: Any = "leaf"
        for _ in range(env.MAX_JSON_DEPTH - 2):  # the envelope and body are two levels
            nested = [nested]
        assert env.decode(wire(sealed(), body={"a": nested}), 10**6).body == {"a": nested}
    finally:
        sys.setrecursionlimit(previous)
