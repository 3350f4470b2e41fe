"""Fixtures for messaging tests: one real nats-server for the session (free port, stopped by
pid at the end), and helpers to run parties and raw NATS clients against it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import nats
import pytest

from connext.devstack import NatsServer
from connext.messaging import Messaging
from connext.messaging import envelope as env
from connext.protocol.signing import Signer


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    # Open (no authorization): these tests check what the messaging layer itself refuses,
    # from any sender to any party, which NATS permissions would stop earlier.
    # tests/messaging/test_nats_auth.py tests the permissions.
    server = NatsServer(authorization=False).start()
    try:
        yield server.url
    finally:
        server.stop()


@asynccontextmanager
async def party(nats_url: str, signer: Signer | None = None,
                **options: Any) -> AsyncIterator[Messaging]:
    """A connected Messaging for `signer` (a fresh key by default), closed on exit."""
    messaging = Messaging(signer or Signer.random(), nats_url, **options)
    await messaging.connect()
    try:
        yield messaging
    finally:
        await messaging.close(grace_s=1.0)


@asynccontextmanager
async def echo_server(nats_url: str, signer: Signer | None = None, *,
                      queue: str | None = None, **options: Any) -> AsyncIterator[Messaging]:
    """A party that serves "test.echo" (returns the body and who sent it)."""
    async with party(nats_url, signer, **options) as server:
        async def echo(request: env.Envelope) -> dict[str, Any]:
            return {"echo": request.body, "sender": request.sender}

        server.handle("test.echo", echo)
        await server.serve(queue=queue)
        yield server


async def raw_request(nats_url: str, subject: str, payload: bytes,
                      timeout: float = 5.0) -> env.Envelope:
    """Send raw bytes with a plain NATS client and return the (unverified) reply envelope."""
    nc = await nats.connect(nats_url)
    try:
        reply = await nc.request(subject, payload, timeout=timeout)
    finally:
        await nc.close()
    return env.decode(reply.data, 10**6)


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 20))
