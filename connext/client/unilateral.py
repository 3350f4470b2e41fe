"""Leaving a channel without the node: what makes the funds self-custodied.

`force_close` puts the latest double-signed state on chain (deploying the channel's proxy
first if nobody did). During the channel's consensus window (its `timeout`) the node may
answer with a later state; after it, `exit_channel` pays out: it defunds the channel's
balances, proves each active transfer in the disputed state and settles it (resolving the
ones paid to us that we can open, refunding the others once their own dispute window is
over) and sends what the channel owes us to the recipient. `exit_channel` does what can be
done now and says what still waits, so it is called again until `done`.

Every transaction is sent from the user's own account, which pays the gas.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from web3 import Web3

from ..chain.channel import ChannelContract
from ..chain.contracts import Sender
from ..chain.exit import ChannelExit, Dispute, ExitProgress
from ..protocol import errors
from ..protocol.types import Address
from ..store import StoredChannel

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Dispute", "ExitProgress", "answer", "disputed_on_chain", "exit_channel",
           "force_close"]


async def force_close(client: Client) -> Dispute:
    """Dispute our latest double-signed state on chain. From then on the channel takes no
    more updates (a later state would not count)."""
    await client.engine.stop_updating(client.channel_address)
    stored = await _stored(client)
    return await asyncio.to_thread(_exit_for(client, stored).dispute)


async def answer(client: Client, stored: StoredChannel) -> Dispute:
    """Answer a dispute of a stale state with `stored` (our latest), from our account."""
    return await asyncio.to_thread(_exit_for(client, stored).dispute)


def disputed_on_chain(client: Client) -> bool:
    """Whether the client's channel is disputed on chain (a blocking read)."""
    channel = ChannelContract(client.w3, client.channel_address, client.node_address,
                              client.address)
    return channel.is_deployed() and channel.channel_dispute().nonce > 0


async def exit_channel(client: Client, recipient: Address | None = None) -> ExitProgress:
    """After the consensus window: pay out what can be paid now to `recipient` (our own
    address by default). Raises NotDisputed before `force_close`, DisputeWindowOpen while
    the window is open, UnknownDisputedState if the chain holds a state we do not have."""
    stored = await _stored(client)
    to = Web3.to_checksum_address(recipient or client.address)
    openers = {t.transfer_id: client.resolver_we_hold(t) for t in stored.transfers.values()}
    return await asyncio.to_thread(_exit_for(client, stored).exit, to, openers,
                                   client.rules())


async def _stored(client: Client) -> StoredChannel:
    stored = await client.engine.channel(client.channel_address)
    if stored is None:
        raise errors.ChannelNotSetUp("no channel yet: call setup()")
    return stored


def _exit_for(client: Client, stored: StoredChannel) -> ChannelExit:
    return ChannelExit(client.w3, stored, client.address,
                       Sender(client.w3, client.signer.private_key).transact)
