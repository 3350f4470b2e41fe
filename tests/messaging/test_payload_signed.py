"""Payload-signed methods (a channel update) go without envelope signatures: the request's
body carries the sender's own signature and the result the server's, so the envelope's
would be a second signature on the same thing. What an attacker on an open NATS server
tries: an unsigned request to any other method, an unsigned error or a forged unsigned
result racing the genuine one. Error replies stay signed."""

from __future__ import annotations

import os
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg

from connext.messaging import (
    InvalidEnvelopeSignature,
    InvalidReply,
    Messaging,
    RemoteError,
    flush_subscriptions,
    subject,
)
from connext.messaging import envelope as env
from connext.protocol import errors
from connext.protocol.encoding import keccak
from connext.protocol.signing import Signer, recover

from .conftest import party, raw_request, run

METHOD = "test.signed"


def _signed(signer: Signer, text: str) -> dict[str, Any]:
    return {"text": text, "signature": "0x" + signer.sign(keccak(text.encode())).hex()}


def _signer_of(body: dict[str, Any]) -> str:
    return recover(keccak(body["text"].encode()), bytes.fromhex(body["signature"][2:]))


def _check_from(address: str) -> Any:
    def check(result: dict[str, Any]) -> None:
        try:
            if _signer_of(result) == address:
                return
        except Exception:
            pass
        raise errors.InvalidSignature("not signed by the server")

    return check


async def _serve(server: Messaging) -> None:
    async def answer(request: env.Envelope) -> dict[str, Any]:
        if _signer_of(request.body) != request.sender:  # the payload authenticates it
            raise errors.InvalidSignature("the body is not signed by its sender")
        if request.body["text"] == "refuse":
            raise errors.StaleNonce("refused")
        return _signed(server.signer, "re: " + request.body["text"])

    async def echo(request: env.Envelope) -> dict[str, Any]:
        return {"sender": request.sender}

    server.handle(METHOD, answer, payload_signed=True)
    server.handle("test.echo", echo)
    await server.serve()


def test_a_payload_signed_request_and_its_result_go_unsigned(nats_url: str) -> None:
    async def scenario() -> None:
        seen: list[env.Envelope] = []

        async def spy(msg: Msg) -> None:
            if msg.subject.startswith(("connext.", "_INBOX.")):
                seen.append(env.decode(msg.data, 10**6))

        spy_nc = await nats.connect(nats_url)
        await spy_nc.subscribe(">", cb=spy)
        await flush_subscriptions(spy_nc)
        try:
            async with party(nats_url) as server, party(nats_url) as client:
                await _serve(server)
                result = await client.request(server.address, METHOD,
                                              _signed(client.signer, "hello"),
                                              check_result=_check_from(server.address))
                assert result["text"] == "re: hello"
                # an error reply to it is signed
                with pytest.raises(RemoteError) as refused:
                    await client.request(server.address, METHOD, _signed(client.signer, "refuse"),
                                         check_result=_check_from(server.address))
                assert refused.value.code == errors.StaleNonce.code
                await flush_subscriptions(spy_nc)
        finally:
            await spy_nc.close()
        ours = [e for e in seen if e.method.startswith(METHOD)]
        assert [(e.method, e.unsigned) for e in ours] == [
            (METHOD, True), (METHOD + ".reply", True),
            (METHOD, True), (METHOD + ".reply", False),
        ]
        env.verify_sender(ours[3])

    run(scenario())


def test_an_unsigned_request_is_refused_for_any_other_method(nats_url: str) -> None:
    async def scenario() -> None:
        async with party(nats_url) as server:
            await _serve(server)
            victim = Signer.random()
            forged = env.unsigned(victim.address, server.address, "test.echo", {},
                                  message_id=os.urandom(16), timestamp=server._now_ms())
            reply = await raw_request(nats_url, subject(server.address, victim.address,
                                                        "test.echo"), env.encode(forged))
            env.verify_sender(reply)  # the refusal is signed
            assert reply.body["error"] == {"code": InvalidEnvelopeSignature.code,
                                           "message": "the message is not signed"}

            # under the payload-signed method, a body not signed by the claimed sender
            forged = env.unsigned(victim.address, server.address, METHOD,
                                  _signed(Signer.random(), "pay mallory"),
                                  message_id=os.urandom(16), timestamp=server._now_ms())
            reply = await raw_request(nats_url, subject(server.address, victim.address, METHOD),
                                      env.encode(forged))
            assert reply.body["error"] == {"code": errors.InvalidSignature.code,
                                           "message": "the body is not signed by its sender"}

    run(scenario())


def _unsigned_replier(server: Signer, body_of: Any) -> Any:
    """A NATS callback answering every request with an unsigned reply claiming to be the
    server's, with the body `body_of(request hash)`."""
    async def reply(msg: Msg) -> None:
        request = env.decode(msg.data, 10**6)
        forged = env.unsigned(server.address, request.sender, request.method + ".reply",
                              body_of(env.request_hash(msg.data)),
                              message_id=os.urandom(16), timestamp=request.timestamp)
        await msg.respond(env.encode(forged))

    return reply


@pytest.mark.parametrize("forgery", ["result_signed_by_mallory", "error"])
def test_a_forged_unsigned_reply_arriving_first_does_not_shadow_the_genuine_one(
    nats_url: str, forgery: str,
) -> None:
    mallory = Signer.random()
    body_of = {
        "result_signed_by_mallory": lambda answers: env.result_body(
            answers, _signed(mallory, "re: hello")),
        "error": lambda answers: env.error_body(answers, errors.InvalidUpdate.code, "no"),
    }[forgery]

    async def scenario() -> None:
        async with party(nats_url) as server, party(nats_url) as client:
            nc = await nats.connect(nats_url)
            await nc.subscribe(subject(server.address, "*", METHOD),
                               cb=_unsigned_replier(server.signer, body_of))
            await flush_subscriptions(nc)
            try:
                # alone, the forged reply is dropped: no answer at all
                with pytest.raises(InvalidReply):
                    await client.request(server.address, METHOD, _signed(client.signer, "x"),
                                         timeout=0.5, check_result=_check_from(server.address))
                await _serve(server)
                for _ in range(5):
                    result = await client.request(server.address, METHOD,
                                                  _signed(client.signer, "hello"),
                                                  check_result=_check_from(server.address))
                    assert _signer_of(result) == server.address
            finally:
                await nc.close()

    run(scenario())
