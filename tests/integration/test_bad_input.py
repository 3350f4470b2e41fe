"""Bad input to a real node over real NATS: a typed error, no state change, still serving."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from typing import Any

import nats

from connext.messaging import envelope as env
from connext.messaging.natsauth import login_options
from connext.messaging.transport import subject
from connext.protocol.channel import create_update, deposit_update, propose
from connext.protocol.serialization import update_to_json
from connext.protocol.signing import Signer
from connext.protocol.transfers import HASHLOCK, lock_hash
from connext.protocol.types import ETH, Balance

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER


def test_bad_messages_get_typed_errors_and_change_nothing(
    clients: ClientFactory, node: NodeProcess
) -> None:
    async def scenario() -> None:
        user_signer = clients.signer()
        user = await clients.connect(user_signer)
        other = await clients.connect()
        await user.setup()
        await other.setup()
        await user.deposit(ETH, ETHER)
        state = await user.channel()
        before = node.channel(user.channel_address)
        raw = await nats.connect(clients.nats.url, **login_options(user_signer))

        async def send(wire: bytes, method: str = "protocol.update") -> dict[str, Any]:
            to = subject(node.address, user_signer.address, method)
            reply = await raw.request(to, wire, timeout=10)
            parsed = env.decode(reply.data, 10**6)
            env.verify_sender(parsed)  # error replies are signed by the node too
            assert parsed.sender == node.address
            error = parsed.body.get("error")
            assert isinstance(error, dict), parsed.body
            return error

        def sealed(body: dict[str, Any], *, signer: Signer = user_signer, to: str | None = None,
                   method: str = "protocol.update", timestamp: int | None = None,
                   message_id: bytes | None = None) -> env.Envelope:
            return env.seal(signer, to or node.address, method, body,
                            message_id=message_id or os.urandom(16),
                            timestamp=timestamp or int(time.time() * 1000))

        def signed_update(update: Any, on: Any = None) -> dict[str, Any]:
            signed, _ = propose(on or state, {}, update, user_signer, user.rules())
            return {"update": update_to_json(signed)}

        preimage = b"\x05" * 32
        good_create = create_update(
            state, user.address, transfer_id=os.urandom(32),
            transfer_definition=clients.deployment.definitions["Hashlock"], asset_id=ETH,
            amount=ETHER // 10, initial_state=HASHLOCK.encode_state(lock_hash(preimage), 0),
            transfer_timeout=600, meta={"routingId": "0x" + "11" * 32,
                                        "recipient": other.address},
        )
        cases: list[tuple[str, bytes, str]] = []

        forged = sealed(signed_update(good_create))
        forged = replace(forged, signature=Signer.random().sign(b"\x01" * 32))
        cases.append(("forged signature", env.encode(forged), "invalid_signature"))
        cases.append(("wrong recipient",
                      env.encode(sealed(signed_update(good_create), to=other.address)),
                      "wrong_recipient"))
        stale = sealed(signed_update(good_create), timestamp=int(time.time() * 1000) - 3_600_000)
        cases.append(("stale timestamp", env.encode(stale), "stale_timestamp"))
        wrong_nonce = signed_update(good_create)
        wrong_nonce["update"]["nonce"] = str(state.nonce + 5)
        cases.append(("wrong nonce", env.encode(sealed(wrong_nonce)), "stale_nonce"))
        overspend = create_update(
            state, user.address, transfer_id=os.urandom(32),
            transfer_definition=clients.deployment.definitions["Hashlock"], asset_id=ETH,
            amount=2 * ETHER, initial_state=HASHLOCK.encode_state(lock_hash(preimage), 0),
            transfer_timeout=600,
        )
        # signed on a copy of the state that pretends to hold more: the node's own copy says no
        richer = replace(state, balances=(Balance(state.balances[0].alice, 10 * ETHER),))
        cases.append(("overspend", env.encode(sealed(signed_update(overspend, richer))),
                      "insufficient_balance"))
        fake_deposit = deposit_update(state, user.address, ETH, 0, 5 * ETHER)
        cases.append(("deposit the chain does not show",
                      env.encode(sealed(signed_update(fake_deposit))), "invalid_deposit"))
        cases.append(("malformed update body",
                      env.encode(sealed({"update": {"nonce": "x"}})), "malformed_data"))
        cases.append(("malformed JSON", b"{not json", "malformed_message"))
        cases.append(("oversized body",
                      env.encode(sealed({"pad": "x" * 400_000})), "message_too_large"))
        for name, wire, code in cases:
            error = await send(wire)
            assert error["code"] == code, (name, error)
            assert error["message"], name

        unknown = sealed({}, method="steal.funds")
        error = await send(env.encode(unknown), "steal.funds")
        assert error["code"] == "unknown_method"

        replayed = sealed({}, method="node.info")
        reply = await raw.request(subject(node.address, user_signer.address, "node.info"),
                                  env.encode(replayed), timeout=10)
        assert "result" in env.decode(reply.data, 10**6).body
        error = await send(env.encode(replayed), "node.info")
        assert error["code"] == "replayed_message"

        # nothing changed, and the node keeps serving real payments
        assert node.channel(user.channel_address) == before
        assert (await user.channel()) == state
        result = await user.transfer(other.address, ETH, ETHER // 10)
        assert result.status == "completed"
        await raw.close()
        await user.close()
        await other.close()

    asyncio.run(scenario())


def test_a_request_replayed_after_a_node_restart_is_refused_as_replayed(
    clients: ClientFactory, node: NodeProcess
) -> None:
    async def scenario() -> None:
        signer = clients.signer()
        user = await clients.connect(signer)
        await user.setup()
        await user.close()
        raw = await nats.connect(clients.nats.url, **login_options(signer))
        to = subject(node.address, signer.address, "channel.online")

        def message() -> bytes:
            sealed = env.seal(signer, node.address, "channel.online",
                              {"channelAddress": user.channel_address},
                              message_id=os.urandom(16), timestamp=int(time.time() * 1000))
            return env.encode(sealed)

        async def send(wire: bytes) -> dict[str, Any]:
            reply = await raw.request(to, wire, timeout=10)
            parsed = env.decode(reply.data, 10**6)
            env.verify_sender(parsed)
            return parsed.body

        captured = message()
        assert "result" in await send(captured)
        node.stop()
        node.start()
        replayed = await send(captured)  # inside the time window, after the restart
        assert replayed["error"]["code"] == "replayed_message"
        assert "result" in await send(message())  # a fresh message is fine
        await raw.close()

    asyncio.run(scenario())
