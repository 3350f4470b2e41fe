"""NATS authorization on a real nats-server with the real auth service (`connext nats-auth`):
who may connect, and what each identity may publish and subscribe to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NatsClient

from connext.devstack import NatsServer
from connext.messaging import Messaging
from connext.messaging import envelope as env
from connext.messaging.natsauth import (
    AuthKeys,
    Authorizer,
    InvalidJwt,
    decode_jwt,
    encode_jwt,
    inbox_prefix,
    login_options,
    new_keypair,
)
from connext.messaging.transport import subject
from connext.protocol.signing import Signer

from .conftest import run

NODE = Signer.random()
ALICE = Signer.random()
BOB = Signer.random()
MALLORY = Signer.random()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    root = tmp_path_factory.mktemp("nats-auth")
    nats_server = NatsServer(nodes=[NODE.address], auth_dir=root / "auth",
                             log_path=root / "nats.log", login_ttl_s=3).start()
    try:
        yield nats_server
    finally:
        nats_server.stop()


class Connection:
    """A raw NATS connection that records the errors the server sends it."""

    def __init__(self, nc: NatsClient, errors: list[str]) -> None:
        self.nc = nc
        self.errors = errors

    async def violations(self, pause: float = 0.3) -> list[str]:
        await self.nc.flush()
        await asyncio.sleep(pause)
        return [e for e in self.errors if "permissions violation" in e.lower()]


@asynccontextmanager
async def connected(url: str, signer: Signer | None, **options: Any
                    ) -> AsyncIterator[Connection]:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    login = login_options(signer) if signer is not None else {}
    nc = await nats.connect(url, error_cb=on_error, max_reconnect_attempts=0,
                            connect_timeout=3, allow_reconnect=False, **login, **options)
    try:
        yield Connection(nc, errors)
    finally:
        await nc.close()


async def refused_login(url: str, **options: Any) -> str:
    async def quiet(exc: Exception) -> None:
        pass

    with pytest.raises(Exception) as refused:
        await nats.connect(url, max_reconnect_attempts=0, allow_reconnect=False,
                           connect_timeout=3, error_cb=quiet, **options)
    return str(refused.value).lower()


def test_a_connection_without_credentials_is_refused(server: NatsServer) -> None:
    async def scenario() -> None:
        assert "authorization" in await refused_login(server.url)
        assert "authorization" in await refused_login(server.url, token=ALICE.address)

    run(scenario())


def test_a_login_signed_by_another_key_is_refused(server: NatsServer) -> None:
    """Mallory claims Alice's address and signs the nonce with her own key; a signature
    over something other than this connection's nonce fails the same way."""
    async def scenario() -> None:
        forged = dict(login_options(MALLORY), token=ALICE.address)
        assert "authorization" in await refused_login(server.url, **forged)
        replayed = dict(login_options(ALICE),
                        signature_cb=lambda nonce: ALICE.sign(b"\x00" * 32).hex().encode())
        assert "authorization" in await refused_login(server.url, **replayed)

    run(scenario())


@pytest.mark.parametrize("foreign", [
    ">", "connext.>", f"connext.{BOB.address.lower()}.>",
    f"connext.{NODE.address.lower()}.>", "_INBOX.>", f"{inbox_prefix(BOB.address)}.>",
    "$SYS.>",
])
def test_a_user_cannot_subscribe_to_anything_but_its_own_subjects(
    server: NatsServer, foreign: str
) -> None:
    async def scenario() -> None:
        async with connected(server.url, ALICE) as alice:
            await alice.nc.subscribe(f"connext.{ALICE.address.lower()}.>")
            await alice.nc.subscribe(f"{inbox_prefix(ALICE.address)}.>")
            assert await alice.violations() == []
            await alice.nc.subscribe(foreign)
            assert len(await alice.violations()) == 1, foreign

    run(scenario())


def test_a_user_cannot_join_the_nodes_queue_group(server: NatsServer) -> None:
    async def scenario() -> None:
        async with connected(server.url, NODE) as node, connected(server.url, MALLORY) as mal:
            served: list[str] = []

            async def serve(msg: Any) -> None:
                served.append(msg.subject)
                await msg.respond(b"from the node")

            await node.nc.subscribe(f"connext.{NODE.address.lower()}.>", queue="node",
                                    cb=serve)
            await mal.nc.subscribe(f"connext.{NODE.address.lower()}.>", queue="node")
            assert len(await mal.violations()) == 1
            async with connected(server.url, ALICE) as alice:
                for _ in range(5):
                    reply = await alice.nc.request(
                        subject(NODE.address, ALICE.address, "node.info"), b"{}", timeout=3)
                    assert reply.data == b"from the node"
            assert len(served) == 5

    run(scenario())


@pytest.mark.parametrize("target", [
    subject(ALICE.address, NODE.address, "transfer.received"),  # as the node
    subject(NODE.address, BOB.address, "protocol.update"),  # to the node as Bob
    subject(BOB.address, MALLORY.address, "protocol.update"),  # a node method to a user
    subject(BOB.address, ALICE.address, "stream.vouchers"),  # vouchers as Alice
    f"{inbox_prefix(ALICE.address)}.x.1",  # into Alice's inbox
    "_INBOX.anything",
    "$SYS.REQ.USER.AUTH",
])
def test_a_user_cannot_publish_as_anyone_else(server: NatsServer, target: str) -> None:
    async def scenario() -> None:
        async with connected(server.url, MALLORY) as mallory:
            await mallory.nc.publish(subject(NODE.address, MALLORY.address, "node.info"), b"")
            await mallory.nc.publish(
                subject(BOB.address, MALLORY.address, "stream.vouchers"), b"")
            await mallory.nc.publish(subject(BOB.address, MALLORY.address, "stream.close"), b"")
            assert await mallory.violations() == []
            await mallory.nc.publish(target, b"forged")
            assert len(await mallory.violations()) == 1, target

    run(scenario())


def test_no_responders_cannot_be_forged_into_another_users_inbox(server: NatsServer) -> None:
    """Mallory tries to fail Alice's request to the node with a "no responders" status
    sent straight into Alice's inbox: the server refuses it, and the node's answer comes."""
    async def scenario() -> None:
        node = Messaging(NODE, server.url)
        await node.connect()

        async def info(request: env.Envelope) -> dict[str, Any]:
            await asyncio.sleep(0.3)
            return {"node": "here"}

        node.handle("node.info", info)
        await node.serve(queue="node")
        alice = Messaging(ALICE, server.url)
        await alice.connect()
        try:
            async with connected(server.url, MALLORY) as mallory:
                pending = asyncio.ensure_future(alice.request(NODE.address, "node.info", {}))
                await asyncio.sleep(0.05)
                await mallory.nc.publish(f"{alice._inbox_prefix}.0", b"",
                                         headers={"Status": "503"})
                assert len(await mallory.violations(0.1)) == 1
                assert await pending == {"node": "here"}
        finally:
            await alice.close()
            await node.close()

    run(scenario())


def test_a_party_logs_in_again_when_its_login_expires(
    server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Logins last 3 s here: the server closes the connection then, and the party comes
    back with a new signature over a new nonce and keeps working."""
    caplog.set_level(logging.INFO, logger="connext.messaging")

    async def scenario() -> None:
        node = Messaging(NODE, server.url)
        await node.connect()

        async def echo(request: env.Envelope) -> dict[str, Any]:
            return {"echo": request.body}

        node.handle("test.echo", echo)
        await node.serve()
        alice = Messaging(ALICE, server.url)
        await alice.connect()
        try:
            # 40 requests 0.2 s apart span at least two 3 s logins of each party, however
            # slowly this machine runs; a request whose reply the server dropped with an
            # expired connection is all that may fail
            answers = 0
            for n in range(40):
                try:
                    assert await alice.request(NODE.address, "test.echo", {"n": n},
                                               timeout=3) == {"echo": {"n": n}}
                    answers += 1
                except Exception:
                    pass
                await asyncio.sleep(0.2)
            assert answers >= 30
            logins = [r for r in caplog.records if "logged in to NATS again" in r.getMessage()
                      and ALICE.address in r.getMessage()]
            assert len(logins) >= 2
        finally:
            await alice.close()
            await node.close()

    run(scenario())


# --- the authorizer's decisions, without a server --------------------------------------------

def _request(nonce: str, signer: Signer, claimed: str | None = None) -> str:
    server_key = new_keypair(13 << 3)  # a server nkey ("N...")
    return encode_jwt({
        "aud": "nats-authorization-request", "sub": "A", "nats": {
            "server_id": {"id": server_key.public_key.decode()},
            "user_nkey": "UTEST", "client_info": {"nonce": nonce},
            "connect_opts": {"auth_token": claimed or signer.address,
                             "sig": login_options(signer)["signature_cb"](nonce).decode()},
            "type": "authorization_request", "version": 2}}, server_key)


def test_the_authorizer_grants_each_address_only_its_own_subjects() -> None:
    keys = AuthKeys.create()
    authorizer = Authorizer(keys, frozenset({NODE.address}), ttl_s=60)
    response = decode_jwt(authorizer.answer(_request("n1", ALICE)))
    assert response["iss"] == keys.issuer.public_key.decode()
    user = decode_jwt(response["nats"]["jwt"])
    assert user["name"] == ALICE.address and user["aud"] == "CONNEXT"
    assert user["exp"] - user["iat"] == 60
    me, node = ALICE.address.lower(), NODE.address.lower()
    assert user["nats"]["pub"]["allow"] == [
        f"connext.{node}.{me}.>", f"connext.*.{me}.stream.vouchers",
        f"connext.*.{me}.stream.close"]
    assert user["nats"]["sub"]["allow"] == [f"connext.{me}.>", f"_INBOX.{me}.>"]
    node_user = decode_jwt(decode_jwt(authorizer.answer(_request("n2", NODE)))["nats"]["jwt"])
    assert node_user["nats"]["pub"]["allow"] == [f"connext.*.{node}.>"]
    refused = decode_jwt(authorizer.answer(_request("n3", MALLORY, claimed=ALICE.address)))
    assert "jwt" not in refused["nats"] and "not" in refused["nats"]["error"]


def test_the_authorizer_ignores_requests_not_signed_by_a_server() -> None:
    authorizer = Authorizer(AuthKeys.create(), frozenset({NODE.address}))
    genuine = _request("n1", ALICE)
    header, payload, signature = genuine.split(".")
    with pytest.raises(InvalidJwt):
        authorizer.answer(f"{header}.{payload}.{signature[:-4]}AAAA")
    account_signed = encode_jwt({"aud": "nats-authorization-request", "nats": {}},
                                new_keypair(0))
    with pytest.raises(InvalidJwt):
        authorizer.answer(account_signed)


def test_only_a_listed_node_may_publish_to_users(server: NatsServer) -> None:
    """What the node checks at start (Messaging.may_publish): a node address passes, any
    other address is a user and may not."""
    async def scenario() -> None:
        for signer, allowed in ((NODE, True), (MALLORY, False)):
            messaging = Messaging(signer, server.url)
            await messaging.connect()
            try:
                probe = subject(ALICE.address, signer.address, "node.probe")
                assert await messaging.may_publish(probe) is allowed
            finally:
                await messaging.close()

    run(scenario())
