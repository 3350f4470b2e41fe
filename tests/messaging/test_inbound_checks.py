"""Every bad inbound message, sent as raw bytes over real NATS, gets a signed typed error
reply from the server, reaches no handler, and the server keeps serving the next request."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats
import pytest

from connext.messaging import envelope as env
from connext.messaging import subject
from connext.protocol.signing import Signer

from .conftest import echo_server, party, raw_request, run

ALICE = Signer.random()
MALLORY = Signer.random()


def signed(to: str, method: str = "test.echo", body: dict[str, Any] | None = None, *,
           signer: Signer = ALICE, skew_s: float = 0.0,
           changes: dict[str, Any] | None = None) -> bytes:
    """A genuine signed envelope from `signer` to `to`, then `changes` made to its JSON."""
    envelope = env.seal(signer, to, method, body if body is not None else {"n": "1"},
                        message_id=os.urandom(16),
                        timestamp=int((time.time() + skew_s) * 1000))
    data = env.to_json(envelope)
    data.update(changes or {})
    return json.dumps(data).encode()


def without(field: str) -> Callable[[str], bytes]:
    def build(to: str) -> bytes:
        data = json.loads(signed(to))
        del data[field]
        return json.dumps(data).encode()

    return build


@dataclass
class BadInput:
    build: Callable[[str], bytes]  # server address -> raw message
    code: str
    method: str = "test.echo"  # the subject's method
    sender: Signer = ALICE  # the subject's sender
    answers_sender: bool = True  # the error reply can name who sent it and which request


FORGED_SIGNATURE = "0x" + "ab" * 64 + "1b"
BAD_INPUTS = {
    "forged_signature": BadInput(
        lambda to: signed(to, changes={"signature": FORGED_SIGNATURE}), "invalid_signature"),
    "body_changed_after_signing": BadInput(
        lambda to: signed(to, body={"n": "2"}).replace(b'"n": "2"', b'"n": "3"'),
        "invalid_signature"),
    "from_is_not_the_signer": BadInput(
        lambda to: signed(to, signer=MALLORY, changes={"from": ALICE.address}),
        "invalid_signature"),
    "sender_differs_from_subject": BadInput(
        lambda to: signed(to, signer=MALLORY), "malformed_message"),
    "to_someone_else": BadInput(lambda to: signed(MALLORY.address), "wrong_recipient"),
    "timestamp_too_old": BadInput(lambda to: signed(to, skew_s=-61), "stale_timestamp"),
    "timestamp_in_the_future": BadInput(lambda to: signed(to, skew_s=61), "stale_timestamp"),
    "unknown_method": BadInput(
        lambda to: signed(to, "test.nothing_here"), "unknown_method",
        method="test.nothing_here"),
    "method_differs_from_subject": BadInput(
        lambda to: signed(to, "test.other"), "malformed_message"),
    "method_badly_named": BadInput(
        lambda to: signed(to).replace(b'"test.echo"', b'"Test.Echo"'), "malformed_message"),
    "malformed_json": BadInput(
        lambda to: b'{"id": "0x01", ', "malformed_message", answers_sender=False),
    "not_utf8": BadInput(lambda to: b"\xff\xfe\xfd", "malformed_message", answers_sender=False),
    "json_array_not_object": BadInput(
        lambda to: b"[1, 2, 3]", "malformed_message", answers_sender=False),
    "json_string_not_object": BadInput(
        lambda to: b'"hello"', "malformed_message", answers_sender=False),
    "empty_message": BadInput(lambda to: b"", "malformed_message", answers_sender=False),
    "missing_signature": BadInput(without("signature"), "malformed_message"),
    "missing_body": BadInput(without("body"), "malformed_message"),
    "missing_timestamp": BadInput(without("timestamp"), "malformed_message"),
    "extra_field": BadInput(lambda to: signed(to, changes={"extra": "x"}), "malformed_message"),
    "body_not_an_object": BadInput(
        lambda to: signed(to, changes={"body": ["n"]}), "malformed_message"),
    "timestamp_as_string": BadInput(
        lambda to: signed(to, changes={"timestamp": "1700000000000"}), "malformed_message"),
    "nested_too_deep": BadInput(
        lambda to: b"[" * 200_000, "malformed_message", answers_sender=False),
    "oversized_body": BadInput(
        lambda to: signed(to, body={"blob": "x" * 300 * 1024}), "message_too_large",
        answers_sender=False),
}


@pytest.mark.parametrize("case", BAD_INPUTS.keys())
def test_bad_input_gets_a_signed_typed_error_and_the_server_keeps_serving(
    nats_url: str, case: str
) -> None:
    bad = BAD_INPUTS[case]

    async def scenario() -> None:
        async with echo_server(nats_url) as server, party(nats_url, ALICE) as client:
            handled: list[env.Envelope] = []

            async def record(request: env.Envelope) -> dict[str, Any]:
                handled.append(request)
                return {}

            server.handle("test.other", record)
            raw = bad.build(server.address)
            to = subject(server.address, bad.sender.address, bad.method)
            reply = await raw_request(nats_url, to, raw)

            env.verify_sender(reply)
            assert reply.sender == server.address
            error = reply.body["error"]
            assert error["code"] == bad.code, error
            assert "Traceback" not in error["message"]
            assert reply.body["requestHash"] == "0x" + env.request_hash(raw).hex()
            if bad.answers_sender:
                request = json.loads(raw)
                assert reply.to.lower() == request["from"].lower()
                assert reply.method == (request["method"] if env.is_valid_method(
                    request["method"]) else "error") + ".reply"
            else:
                assert reply.to == env.ZERO_ADDRESS
                assert reply.method == "error.reply"
            assert handled == []

            result = await client.request(server.address, "test.echo", {"still": "serving"})
            assert result["echo"] == {"still": "serving"}

    run(scenario())


def test_a_replayed_message_is_refused_the_second_time(nats_url: str) -> None:
    async def scenario() -> None:
        async with echo_server(nats_url) as server:
            raw = signed(server.address, body={"pay": "5"})
            to = subject(server.address, ALICE.address, "test.echo")
            first = await raw_request(nats_url, to, raw)
            assert first.body["result"]["echo"] == {"pay": "5"}
            again = await raw_request(nats_url, to, raw)
            env.verify_sender(again)
            assert again.body["error"]["code"] == "replayed_message"
            assert again.body["requestHash"] == "0x" + env.request_hash(raw).hex()

    run(scenario())


def test_a_forger_cannot_burn_a_genuine_message_id(nats_url: str) -> None:
    """Replay protection is per sender: Mallory reusing Alice's id does not block Alice."""
    async def scenario() -> None:
        async with echo_server(nats_url) as server:
            genuine = json.loads(signed(server.address))
            stolen = env.seal(MALLORY, server.address, "test.echo", {"n": "1"},
                              message_id=bytes.fromhex(genuine["id"][2:]),
                              timestamp=genuine["timestamp"])
            to = subject(server.address, MALLORY.address, "test.echo")
            assert "result" in (await raw_request(nats_url, to, env.encode(stolen))).body
            to = subject(server.address, ALICE.address, "test.echo")
            reply = await raw_request(nats_url, to, json.dumps(genuine).encode())
            assert reply.body["result"]["sender"] == ALICE.address

    run(scenario())


def test_a_forged_message_does_not_poison_the_replay_cache(nats_url: str) -> None:
    async def scenario() -> None:
        async with echo_server(nats_url) as server:
            genuine = json.loads(signed(server.address))
            forged = dict(genuine, signature=FORGED_SIGNATURE)
            to = subject(server.address, ALICE.address, "test.echo")
            refused = await raw_request(nats_url, to, json.dumps(forged).encode())
            assert refused.body["error"]["code"] == "invalid_signature"
            accepted = await raw_request(nats_url, to, json.dumps(genuine).encode())
            assert accepted.body["result"]["sender"] == ALICE.address

    run(scenario())


def test_the_time_window_and_size_limit_are_configurable(nats_url: str) -> None:
    async def scenario() -> None:
        async with echo_server(nats_url, time_window_s=5, max_body_bytes=2048) as server:
            to = subject(server.address, ALICE.address, "test.echo")
            stale = await raw_request(nats_url, to, signed(server.address, skew_s=-10))
            assert stale.body["error"]["code"] == "stale_timestamp"
            big = await raw_request(nats_url, to, signed(server.address, body={"b": "x" * 2048}))
            assert big.body["error"]["code"] == "message_too_large"
            fine = await raw_request(nats_url, to, signed(server.address, skew_s=-4))
            assert "result" in fine.body

    run(scenario())


def test_bad_notifications_are_dropped_without_reaching_a_handler(nats_url: str) -> None:
    async def scenario() -> None:
        async with party(nats_url) as user, party(nats_url, ALICE) as node:
            seen: list[dict[str, Any]] = []

            async def on_event(notification: env.Envelope) -> dict[str, Any]:
                seen.append(notification.body)
                return {}

            user.handle("transfer.received", on_event)
            await user.serve()
            nc = await nats.connect(nats_url)
            to = subject(user.address, ALICE.address, "transfer.received")
            await nc.publish(to, signed(user.address, "transfer.received", {"n": "forged"},
                                        changes={"signature": FORGED_SIGNATURE}))
            await nc.publish(to, b"garbage")
            await nc.close()
            await node.publish(user.address, "transfer.received", {"n": "genuine"})
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            assert seen == [{"n": "genuine"}]

    run(scenario())
