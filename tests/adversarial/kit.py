"""The hostile-party kit: a client or node whose behaviour a test can bend.

- `HostileClient`: a user's real client that can refuse (and keep) the node's proposals
  (withhold a countersignature, extract the node's signature), hold back its claims of
  incoming payments until a chosen moment, go silent (stop answering) and come back, and
  act on chain directly with any state it ever held (dispute an old state, execute a
  withdraw commitment).
- `HostileNode`: the real node daemon in this process, with its update handler bent by the
  test (refuse or swallow a user's proposal, and do what it likes with what it learnt).
- Chain helpers that read payouts to the wei (`exited`, `withdrawn`, `eth`).
Nothing here changes the honest code paths: the bends wrap the real handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from web3 import Web3

from connext.chain.anvil import Anvil
from connext.chain.channel import ChannelContract
from connext.chain.contracts import Sender, contract
from connext.chain.deploy import Deployment
from connext.client import Client
from connext.engine.engine import ACCEPT_METHOD, UPDATE_METHOD
from connext.node.config import NodeConfig
from connext.node.service import Node
from connext.protocol import errors
from connext.protocol.channel import Applied, Bounds, apply_update
from connext.protocol.serialization import update_from_json
from connext.protocol.signing import Signer
from connext.protocol.types import Address, ChannelState, Update

from ..integration.conftest import ClientFactory

Bend = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any] | None]]
"""(sender, request body) -> a reply of our own, or None to let the honest handler answer."""


class HostileClient(Client):
    """A user's client that deviates where the test says so (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refuse: Callable[[dict[str, Any]], bool] = lambda update: False
        """Refuse the node's proposals this says yes to (answered with an error)."""
        self.kept: list[Update] = []
        """The node's proposals we refused: each carries the node's signature."""
        self.hold_claims = False
        """While set, payments to us are not claimed (resolved) yet."""
        self.follow_up_instead: Callable[[Update, Applied], Update | None] | None = None
        """What we attach to our countersignature of the node's proposals instead of the
        honest claim (signed by us, never checked against the chain by us)."""

    def _bind(self, method: str, handler: Any) -> None:
        if method == UPDATE_METHOD:
            honest = handler

            async def bent(sender: str, body: dict[str, Any]) -> dict[str, Any]:
                update = body.get("update") or {}
                if self.refuse(update):
                    self.kept.append(update_from_json(update))
                    raise errors.InvalidUpdate("not now")
                result: dict[str, Any] = await honest(sender, body)
                return result

            handler = bent
        super()._bind(method, handler)

    async def _on_incoming(self, transfer: Any) -> None:
        if not self.hold_claims:
            await super()._on_incoming(transfer)

    def _claim_at_once(self, update: Update, applied: Applied) -> Update | None:
        if self.hold_claims:
            return None
        if self.follow_up_instead is not None:
            return self.follow_up_instead(update, applied)
        return super()._claim_at_once(update, applied)

    async def release_claims(self) -> None:
        """Claim now what we held back."""
        self.hold_claims = False
        await self.recovery.round()

    async def go_silent(self) -> None:
        """Stop answering the node (it gets no responders), and stop our own loops."""
        self._claimer.cancel()
        await self.messaging.stop_serving()

    async def come_back(self) -> None:
        """Answer the node again, without telling it (no `channel.online`)."""
        await self.messaging.serve()

    def signed_states(self) -> list[Update]:
        """Every double-signed update we ever stored, oldest first."""
        return self.store.update_history(self.channel_address)

    def dispute_on_chain(self, update: Update) -> None:
        """Dispute a double-signed state of our choice on chain, from our own account
        (deploying the channel first if nobody did)."""
        assert update.alice_signature is not None and update.bob_signature is not None
        channel = ChannelContract(self.w3, self.channel_address, self.node_address, self.address)
        sender = Sender(self.w3, self.signer.private_key)
        if not channel.is_deployed():
            factory = contract(self.w3, "ChannelFactory", self.network.channel_factory)
            sender.transact(factory.functions.create_channel(self.node_address, self.address))
        sender.transact(channel.dispute_channel(self._state_at(update.nonce),
                                                update.alice_signature, update.bob_signature))

    def _state_at(self, nonce: int) -> ChannelState:
        """The channel state our stored history reached at `nonce` (replayed, as it was
        signed then: no clock, no bounds)."""
        state: ChannelState | None = None
        transfers: dict[bytes, Any] = {}
        rules = replace(self.rules(), now=0, bounds=Bounds())
        for past in self.signed_states():
            applied = apply_update(state, transfers, past, rules)
            state, transfers = applied.state, dict(applied.transfers)
            if past.nonce == nonce:
                return state
        raise AssertionError(f"no stored update at nonce {nonce}")


async def connect_hostile(clients: ClientFactory, name: str, signer: Signer | None = None,
                          **kwargs: Any) -> HostileClient:
    client = await HostileClient.connect(
        signer or clients.signer(),
        node_address=clients.node.address,
        nats_url=clients.nats.url,
        chain_url=clients.anvil.url,
        database_url=f"sqlite:///{clients.tmp_path / f'{name}.sqlite'}",
        deployment=clients.deployment,
        **kwargs,
    )
    assert isinstance(client, HostileClient)
    return client


class HostileNode(Node):
    """The node daemon run in the test's event loop, its update handler bent by `bend`:
    both ways a user's update reaches it, a request of its own and the follow-up attached
    to a countersignature (a recipient's resolve comes with its countersignature of the
    forward). A bend that raises a protocol error on a follow-up withholds the accept."""

    bend: Bend | None = None

    async def start(self) -> None:
        await super().start()
        honest = self.engine._take_follow_up

        async def bent(channel_address: Address, responder: Address, raw: Any) -> None:
            if self.bend is not None:
                try:
                    answer = await self.bend(responder, {"update": raw})
                except errors.ProtocolError:
                    return  # not taken: the user keeps it pending and re-sends it
                if answer is not None:
                    await self.messaging.publish(responder, ACCEPT_METHOD, answer,
                                                 signed=False)
                    return
            await honest(channel_address, responder, raw)

        self.engine._take_follow_up = bent  # type: ignore[method-assign]

    def _handlers(self) -> dict[str, Any]:
        handlers = super()._handlers()
        honest = handlers[UPDATE_METHOD]

        async def bent(sender: str, body: dict[str, Any]) -> dict[str, Any]:
            if self.bend is not None:
                answer = await self.bend(sender, body)
                if answer is not None:
                    return answer
            result: dict[str, Any] = await honest(sender, body)
            return result

        handlers[UPDATE_METHOD] = bent
        return handlers


def node_config(anvil: Anvil, nats_url: str, deployment_file: Path, tmp: Path,
                key: str, **settings: Any) -> NodeConfig:
    return NodeConfig(private_key=key, nats_url=nats_url, chain_url=anvil.url,
                      database_url=f"sqlite:///{tmp / 'hostile-node.sqlite'}",
                      deployment_file=deployment_file, http_port=0, **settings)


async def start_hostile_node(config: NodeConfig, deployment: Deployment) -> HostileNode:
    node = HostileNode(config, deployment)
    await node.start()
    return node


# --- reading payouts on chain --------------------------------------------------------------


def eth(w3: Web3, address: Address) -> int:
    return int(w3.eth.get_balance(Web3.to_checksum_address(address)))


def exited(w3: Web3, channel_address: Address, owner: Address) -> int:
    """Everything the channel paid `owner`'s credit out through `exit`, in ETH."""
    channel = ChannelContract(w3, channel_address, owner, owner).contract
    logs = channel.events.Exited().get_logs(from_block=0)
    return sum(int(e["args"]["amount"]) for e in logs
               if e["args"]["owner"] == Web3.to_checksum_address(owner))


def withdrawn(w3: Web3, channel_address: Address, recipient: Address) -> int:
    """Everything the channel paid `recipient` through withdraw commitments, in ETH."""
    channel = ChannelContract(w3, channel_address, recipient, recipient).contract
    logs = channel.events.Withdrawn().get_logs(from_block=0)
    return sum(int(e["args"]["amount"]) for e in logs
               if e["args"]["recipient"] == Web3.to_checksum_address(recipient))


def travel(anvil: Anvil, seconds: int) -> None:
    anvil.increase_time(seconds)
    anvil.mine()


async def until(check: Callable[[], Any], timeout: float = 60.0, what: str = "") -> None:
    """Wait until `check()` (sync or async) is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not in time: {what or check}")
        await asyncio.sleep(0.1)


__all__ = ["HostileClient", "HostileNode", "connect_hostile", "eth", "exited", "node_config",
           "start_hostile_node", "travel", "until", "withdrawn"]
