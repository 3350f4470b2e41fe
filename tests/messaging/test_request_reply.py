"""Request/reply and notifications between Messaging parties over a real nats-server."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg

from connext.devstack import NatsServer, free_port
from connext.messaging import (
    InvalidReply,
    MessageTooLarge,
    Messaging,
    MessagingTimeout,
    NoResponders,
    NotConnected,
    RemoteError,
    flush_subscriptions,
    subject,
)
from connext.messaging import envelope as env
from connext.protocol.errors import StaleNonce
from connext.protocol.signing import Signer

from .conftest import echo_server, party, run


def test_request_returns_the_handlers_result_with_the_verified_sender(nats_url: str) -> None:
    async def scenario() -> None:
        async with echo_server(nats_url) as server, party(nats_url) as client:
            result = await client.request(server.address, "test.echo", {"amount": "10"})
            assert result == {"echo": {"amount": "10"}, "sender": client.address}
            # and again, many times in a row, on the same connection
            for i in range(20):
                result = await client.request(server.address.lower(), "test.echo", {"i": i})
                assert result["echo"] == {"i": i}

    run(scenario())


def test_both_parties_can_serve_and_request_at_once(nats_url: str) -> None:
    async def scenario() -> None:
        async with echo_server(nats_url) as alice, echo_server(nats_url) as bob:
            to_bob, to_alice = await asyncio.gather(
                alice.request(bob.address, "test.echo", {"from": "alice"}),
                bob.request(alice.address, "test.echo", {"from": "bob"}),
            )
            assert to_bob == {"echo": {"from": "alice"}, "sender": alice.address}
            assert to_alice == {"echo": {"from": "bob"}, "sender": bob.address}

    run(scenario())


def test_notification_reaches_the_handler_and_its_result_goes_nowhere(nats_url: str) -> None:
    async def scenario() -> None:
        received: asyncio.Queue[env.Envelope] = asyncio.Queue()
        async with party(nats_url) as user, party(nats_url) as node:
            async def on_confirmed(notification: env.Envelope) -> dict[str, Any]:
                await received.put(notification)
                return {"ignored": True}

            user.handle("withdrawal.confirmed", on_confirmed)
            await user.serve()
            await node.publish(user.address, "withdrawal.confirmed", {"transferId": "0x01"})
            notification = await asyncio.wait_for(received.get(), 5)
            assert notification.sender == node.address
            assert notification.to == user.address
            assert notification.body == {"transferId": "0x01"}

    run(scenario())


def test_queue_group_replicas_share_requests_and_each_is_answered_once(nats_url: str) -> None:
    node_key = Signer.random()

    async def scenario() -> None:
        handled: dict[str, list[str]] = {"a": [], "b": []}

        async def replica(name: str, request: env.Envelope) -> dict[str, Any]:
            handled[name].append(request.body["n"])
            await asyncio.sleep(0.005)
            return {"replica": name, "n": request.body["n"]}

        async with party(nats_url, node_key) as a, party(nats_url, node_key) as b, \
                party(nats_url) as client:
            a.handle("node.info", lambda r: replica("a", r))
            b.handle("node.info", lambda r: replica("b", r))
            await a.serve(queue="node")
            await b.serve(queue="node")
            results = await asyncio.gather(*(
                client.request(node_key.address, "node.info", {"n": str(n)}) for n in range(40)
            ))
            assert [r["n"] for r in results] == [str(n) for n in range(40)]
            assert handled["a"] and handled["b"], "both replicas got work"
            assert sorted(handled["a"] + handled["b"], key=int) == [str(n) for n in range(40)]

    run(scenario())


def test_a_slow_handler_does_not_hold_up_other_requests(nats_url: str) -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        async with party(nats_url) as server, party(nats_url) as client:
            async def slow(_request: env.Envelope) -> dict[str, Any]:
                await release.wait()
                return {"slow": True}

            async def fast(_request: env.Envelope) -> dict[str, Any]:
                return {"fast": True}

            server.handle("test.slow", slow)
            server.handle("test.fast", fast)
            await server.serve()
            slow_reply = asyncio.create_task(client.request(server.address, "test.slow", {}))
            assert await client.request(server.address, "test.fast", {}, timeout=2) == (
                {"fast": True}
            )
            assert not slow_reply.done()
            release.set()
            assert await slow_reply == {"slow": True}

    run(scenario())


def test_handler_protocol_error_reaches_the_requester_with_its_code(nats_url: str) -> None:
    async def scenario() -> None:
        async with party(nats_url) as server, party(nats_url) as client:
            async def behind(_request: env.Envelope) -> dict[str, Any]:
                raise StaleNonce("expected nonce 4, got 7")

            server.handle("protocol.update", behind)
            await server.serve()
            with pytest.raises(RemoteError) as caught:
                await client.request(server.address, "protocol.update", {})
            assert caught.value.code == "stale_nonce"
            assert caught.value.message == "expected nonce 4, got 7"
            assert caught.value.to_dict() == {"code": "stale_nonce",
                                              "message": "expected nonce 4, got 7"}

    run(scenario())


def test_handler_crash_is_an_internal_error_without_details_and_serving_goes_on(
    nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with echo_server(nats_url) as server, party(nats_url) as client:
            async def crash(_request: env.Envelope) -> dict[str, Any]:
                raise RuntimeError("database password is hunter2")

            async def not_json(_request: env.Envelope) -> dict[str, Any]:
                return {"value": object()}

            server.handle("test.crash", crash)
            server.handle("test.not_json", not_json)
            for method in ("test.crash", "test.not_json"):
                with pytest.raises(RemoteError) as caught:
                    await client.request(server.address, method, {})
                assert caught.value.code == "internal_error"
                assert "hunter2" not in caught.value.message
                assert "Traceback" not in caught.value.message
            assert (await client.request(server.address, "test.echo", {"x": 1}))["echo"] == (
                {"x": 1}
            )

    with caplog.at_level(logging.ERROR, logger="connext.messaging"):
        run(scenario())
    assert any("hunter2" in str(r.exc_info) for r in caplog.records if r.exc_info)


def test_unknown_method_is_a_remote_unknown_method_error(nats_url: str) -> None:
    async def scenario() -> None:
        async with echo_server(nats_url) as server, party(nats_url) as client:
            with pytest.raises(RemoteError) as caught:
                await client.request(server.address, "test.nothing_here", {})
            assert caught.value.code == "unknown_method"

    run(scenario())


def test_request_to_an_address_nobody_serves_raises_no_responders(nats_url: str) -> None:
    async def scenario() -> None:
        async with party(nats_url) as client:
            with pytest.raises(NoResponders):
                await client.request(Signer.random().address, "test.echo", {}, timeout=2)

    run(scenario())


def test_silent_server_raises_messaging_timeout(nats_url: str) -> None:
    silent = Signer.random()

    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        await nc.subscribe(subject(silent.address, "*", "test.echo"), cb=_ignore)
        await flush_subscriptions(nc)
        try:
            async with party(nats_url) as client:
                started = time.monotonic()
                with pytest.raises(MessagingTimeout) as caught:
                    await client.request(silent.address, "test.echo", {}, timeout=0.3)
                assert 0.3 <= time.monotonic() - started < 2
                assert isinstance(caught.value, TimeoutError)
        finally:
            await nc.close()

    run(scenario())


async def _ignore(_msg: Msg) -> None:
    return None


def _forged_replier(forger: Signer, claimed_sender: Signer | None = None,
                    answers: bytes | None = None) -> Any:
    """A NATS callback answering every request with a reply signed by `forger`."""
    async def reply(msg: Msg) -> None:
        request = env.decode(msg.data, 10**6)
        body = env.result_body(answers or env.request_hash(msg.data), {"forged": True})
        forged = env.seal(forger, request.sender, request.method + ".reply", body,
                          message_id=os.urandom(16), timestamp=request.timestamp)
        data = env.to_json(forged)
        if claimed_sender is not None:
            data["from"] = claimed_sender.address
        await msg.respond(env.encode(env.envelope_from_json(data)))

    return reply


@pytest.mark.parametrize("forgery", ["signed_by_mallory", "claims_to_be_the_server",
                                     "answers_another_request"])
def test_reply_forged_by_a_third_party_is_rejected(nats_url: str, forgery: str) -> None:
    server, mallory = Signer.random(), Signer.random()
    replier = {
        "signed_by_mallory": _forged_replier(mallory),
        "claims_to_be_the_server": _forged_replier(mallory, claimed_sender=server),
        # a genuine reply by the server, replayed onto another request
        "answers_another_request": _forged_replier(server, answers=b"\x01" * 32),
    }[forgery]

    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        await nc.subscribe(subject(server.address, "*", "test.echo"), cb=replier)
        await flush_subscriptions(nc)
        try:
            async with party(nats_url) as client:
                with pytest.raises(InvalidReply):
                    await client.request(server.address, "test.echo", {}, timeout=0.5)
        finally:
            await nc.close()

    run(scenario())


def test_a_forged_reply_arriving_first_does_not_shadow_the_genuine_one(nats_url: str) -> None:
    async def scenario() -> None:
        async with echo_server(nats_url) as server, party(nats_url) as client:
            server_key = server.signer
            nc = await nats.connect(nats_url)
            await nc.subscribe(subject(server.address, "*", "test.echo"),
                               cb=_forged_replier(Signer.random(), claimed_sender=server_key))
            await flush_subscriptions(nc)
            try:
                for _ in range(5):
                    result = await client.request(server.address, "test.echo", {"n": 1})
                    assert result == {"echo": {"n": 1}, "sender": client.address}
            finally:
                await nc.close()

    run(scenario())


def test_oversized_request_is_refused_before_it_is_sent(nats_url: str) -> None:
    async def scenario() -> None:
        async with echo_server(nats_url) as server, \
                party(nats_url, max_body_bytes=1024) as client:
            with pytest.raises(MessageTooLarge):
                await client.request(server.address, "test.echo", {"blob": "x" * 2000})

    run(scenario())


def test_reply_over_the_size_limit_becomes_a_message_too_large_error(nats_url: str) -> None:
    async def scenario() -> None:
        async with party(nats_url, max_body_bytes=4096) as server, \
                party(nats_url, max_body_bytes=4096) as client:
            async def huge(_request: env.Envelope) -> dict[str, Any]:
                return {"blob": "x" * 10_000}

            server.handle("test.huge", huge)
            await server.serve()
            with pytest.raises(RemoteError) as caught:
                await client.request(server.address, "test.huge", {})
            assert caught.value.code == "message_too_large"

    run(scenario())


def test_parties_on_different_signing_chain_ids_cannot_talk(nats_url: str) -> None:
    async def scenario() -> None:
        async with echo_server(nats_url, chain_id=1) as server, \
                party(nats_url, chain_id=5) as client:
            # the server refuses the request, and its error reply is not valid for us either
            with pytest.raises(InvalidReply, match="not signed by its sender"):
                await client.request(server.address, "test.echo", {}, timeout=0.3)
        async with echo_server(nats_url, chain_id=1) as server, \
                party(nats_url, chain_id=1) as client:
            assert (await client.request(server.address, "test.echo", {}))["echo"] == {}

    run(scenario())


def test_server_with_a_skewed_clock_refuses_requests_as_stale(nats_url: str) -> None:
    async def scenario() -> None:
        async with echo_server(nats_url, clock=lambda: time.time() + 120) as server, \
                party(nats_url) as client:
            with pytest.raises(RemoteError) as caught:
                await client.request(server.address, "test.echo", {})
            assert caught.value.code == "stale_timestamp"
        async with echo_server(nats_url, clock=lambda: time.time() + 30) as server, \
                party(nats_url) as client:
            assert (await client.request(server.address, "test.echo", {}))["echo"] == {}

    run(scenario())


def test_handlers_and_methods_must_be_well_named(nats_url: str) -> None:
    async def scenario() -> None:
        async with party(nats_url) as server:
            async def handler(_request: env.Envelope) -> dict[str, Any]:
                return {}

            for bad in ("Channel.Setup", "channel..setup", "channel.*", "channel.>", ""):
                with pytest.raises(ValueError):
                    server.handle(bad, handler)
                with pytest.raises(ValueError):
                    await server.request(server.address, bad, {})
            server.handle("channel.setup", handler)
            with pytest.raises(ValueError):
                server.handle("channel.setup", handler)

    run(scenario())


def test_serving_starts_only_once_the_server_has_the_subscription(nats_url: str) -> None:
    """nats-py writes a flush's PING straight to the socket while a SUB waits in its buffer;
    `serve()` must not return on a PONG the server sent before it saw the SUB (a request sent
    right then would get "no responders"). Checked on the bytes written to the socket."""
    async def scenario() -> None:
        async with party(nats_url) as server:
            nc = server._nc
            assert nc is not None and nc._transport is not None
            transport = nc._transport
            written: list[bytes] = []
            write, writelines = transport.write, transport.writelines

            def record(data: bytes) -> None:
                written.append(bytes(data))
                write(data)

            def record_lines(lines: list[bytes]) -> None:
                written.extend(bytes(line) for line in lines)
                writelines(lines)

            transport.write = record  # type: ignore[method-assign,assignment]
            transport.writelines = record_lines  # type: ignore[method-assign,assignment]
            await server.serve()
            wire = b"".join(written)
            assert b"SUB " in wire
            assert wire.index(b"SUB ") < wire.rindex(b"PING")

    run(scenario())


def test_concurrent_handlers_are_bounded(nats_url: str) -> None:
    async def scenario() -> None:
        running, most = 0, 0
        async with party(nats_url, max_concurrent_handlers=3) as server, \
                party(nats_url) as client:
            async def busy(_request: env.Envelope) -> dict[str, Any]:
                nonlocal running, most
                running += 1
                most = max(most, running)
                await asyncio.sleep(0.02)
                running -= 1
                return {}

            server.handle("test.busy", busy)
            await server.serve()
            await asyncio.gather(*(client.request(server.address, "test.busy", {})
                                   for _ in range(12)))
        assert most == 3

    run(scenario())


def test_closing_fails_pending_requests_and_later_calls(nats_url: str) -> None:
    silent = Signer.random()

    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        await nc.subscribe(subject(silent.address, "*", "test.echo"), cb=_ignore)
        await flush_subscriptions(nc)
        try:
            async with party(nats_url) as client:
                waiting = asyncio.create_task(client.request(silent.address, "test.echo", {}))
                await asyncio.sleep(0.05)
                await client.close()
                with pytest.raises(NotConnected):
                    await waiting
                with pytest.raises(NotConnected):
                    await client.request(silent.address, "test.echo", {})
        finally:
            await nc.close()

    run(scenario())


def test_closing_lets_running_handlers_finish_and_reply(nats_url: str) -> None:
    async def scenario() -> None:
        started = asyncio.Event()
        async with party(nats_url) as server, party(nats_url) as client:
            async def slow(_request: env.Envelope) -> dict[str, Any]:
                started.set()
                await asyncio.sleep(0.1)
                return {"done": True}

            server.handle("test.slow", slow)
            await server.serve()
            reply = asyncio.create_task(client.request(server.address, "test.slow", {}))
            await started.wait()
            await server.close()
            assert await reply == {"done": True}

    run(scenario())


def test_parties_reconnect_and_serve_again_after_nats_restarts(tmp_path: Path) -> None:
    """With authorization on: both parties log in again on the restarted server."""
    node_signer = Signer.random()
    server = NatsServer(nodes=[node_signer.address], auth_dir=tmp_path / "auth",
                        log_path=tmp_path / "nats.log").start()
    port = server.port

    async def scenario() -> None:
        try:
            async with echo_server(server.url, node_signer) as node, \
                    party(server.url) as client:
                assert (await client.request(node.address, "test.echo", {}))["echo"] == {}
                await asyncio.to_thread(server.stop)
                await asyncio.to_thread(restarted.start)
                for _ in range(100):
                    if node.connected and client.connected:
                        break
                    await asyncio.sleep(0.05)
                # nats-py replays the node's subscriptions right after it reconnected: until
                # the server has them, a request finds no responders (a client retries)
                deadline = time.monotonic() + 10
                while True:
                    try:
                        reply = await client.request(node.address, "test.echo", {"again": 1},
                                                     timeout=3)
                        break
                    except NoResponders:
                        assert time.monotonic() < deadline, "the node never served again"
                        await asyncio.sleep(0.05)
                assert reply["echo"] == {"again": 1}
        finally:
            restarted.stop()

    restarted = NatsServer(port=port, nodes=[node_signer.address], auth_dir=tmp_path / "auth",
                           log_path=tmp_path / "nats.log")
    try:
        run(scenario())
    finally:
        server.stop()


def test_connect_to_an_unreachable_nats_fails_fast_with_not_connected() -> None:
    async def scenario() -> None:
        messaging = Messaging(Signer.random(), f"nats://127.0.0.1:{free_port()}")
        started = time.monotonic()
        with pytest.raises(NotConnected):
            await messaging.connect()
        assert time.monotonic() - started < 10

    run(scenario())


def test_an_error_provoked_with_a_tampered_copy_cannot_fail_the_genuine_request(
    nats_url: str,
) -> None:
    """A listener copies the request, breaks its signature, gets the server's signed
    invalid_signature reply and forwards it to the requester first: the reply quotes the
    tampered bytes, not ours, so the requester waits for the genuine answer."""
    async def scenario() -> None:
        async with party(nats_url) as server, party(nats_url) as client:
            forged_error_sent = asyncio.Event()

            async def slow_echo(request: env.Envelope) -> dict[str, Any]:
                await asyncio.wait_for(forged_error_sent.wait(), 5)
                await asyncio.sleep(0.05)  # let the forged reply reach the requester first
                return {"echo": request.body}

            server.handle("test.slow_echo", slow_echo)
            await server.serve()
            to = subject(server.address, client.address, "test.slow_echo")
            nc = await nats.connect(nats_url)
            forwarded: list[str] = []

            forged_signature = "0x" + "ab" * 64 + "1b"

            async def tamper_and_forward(msg: Msg) -> None:
                copy = env.to_json(env.decode(msg.data, 10**6))
                if copy["signature"] == forged_signature:
                    return  # our own tampered copy, seen on the same subject
                copy["signature"] = forged_signature
                error = await nc.request(to, env.encode(env.envelope_from_json(copy)))
                forwarded.append(env.decode(error.data, 10**6).body["error"]["code"])
                await nc.publish(msg.reply, error.data)
                await flush_subscriptions(nc)
                forged_error_sent.set()

            await nc.subscribe(to, cb=tamper_and_forward)
            await flush_subscriptions(nc)
            try:
                result = await client.request(server.address, "test.slow_echo", {"n": 1})
                assert result == {"echo": {"n": 1}}
                assert forwarded == ["invalid_signature"]
            finally:
                await nc.close()

    run(scenario())
