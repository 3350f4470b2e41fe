"""The node daemon: channels with users, routed payments, collateral, withdrawals.

`Node` wires the pieces together: the store, NATS messaging (served in the queue group
"node" so several node processes can share one address and one database), the channel
engine, routing, collateral, withdrawals, the transaction manager, and the HTTP API. All
channel state lives in the store; what is in memory is only locks and caches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ..chain.channel import ChannelDispute
from ..chain.contracts import connect
from ..chain.deploy import Deployment, load_deployment
from ..chain.deposits import ChainDeposits
from ..chain.scanning import every
from ..chain.secrets import SecretWatcher
from ..chain.txmanager import TransactionManager
from ..chain.watcher import DepositWatcher
from ..chain.watchtower import Watchtower
from ..engine import ChannelEngine, Committed
from ..engine.engine import PAYLOAD_SIGNED, REPLAY_SAFE
from ..engine.recovery import RESPONDER, Recovery
from ..messaging import Messaging, subject
from ..messaging.envelope import ZERO_ADDRESS
from ..protocol import errors
from ..protocol.channel import Rules, setup_update
from ..protocol.encoding import channel_address, keccak
from ..protocol.serialization import (
    MalformedData,
    hexb,
    network_to_json,
    parse_address,
    parse_bytes,
    parse_uint,
    state_to_json,
)
from ..protocol.signing import Signer
from ..protocol.swaps import quote_to_json
from ..protocol.transfers import DEFINITIONS, lock_hash
from ..protocol.types import Address, ChannelState, Transfer, UpdateType
from ..store import ChannelStore, StoredChannel
from .collateral import Collateral
from .config import DEFAULT_LIMITS, AssetLimits, NodeConfig
from .exits import NodeExits
from .liquidity import AssetLiquidity, LiquidityWatch
from .metrics import NodeMetrics
from .onchain import NodeChain
from .policy import NodePolicy
from .profiles import Profiles
from .reclaim import IdleReclaim
from .routing import Enforcement, Router, routing_id_of
from .swaps import SwapDesk
from .withdrawals import Reclaims, Withdrawals

log = logging.getLogger(__name__)

Handler = Callable[[Address, dict[str, Any]], Awaitable[dict[str, Any]]]


class Node:
    def __init__(self, config: NodeConfig, deployment: Deployment | None = None) -> None:
        self.config = config
        self.signer = Signer.from_hex(config.private_key)
        self.address = self.signer.address
        self._deployment = deployment
        self.metrics = NodeMetrics()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.http_port: int | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        self.w3 = connect(cfg.chain_url)
        chain_id = await asyncio.to_thread(lambda: self.w3.eth.chain_id)
        deployment = self._deployment or load_deployment(cfg.deployment_file, chain_id)
        if deployment is None:
            raise RuntimeError(
                f"no deployment for chain {chain_id} in {cfg.deployment_file}: run `connext "
                "deploy` (or `make start`) first"
            )
        self.deployment = deployment
        self.network = deployment.network
        self.definition_names = {addr: name for name, addr in deployment.definitions.items()}
        cfg.check()
        self.store = await asyncio.to_thread(ChannelStore.open, cfg.database_url,
                                             synchronous=cfg.sqlite_sync)
        self.secrets = SecretWatcher(self.w3, self.store, deployment.secret_registry,
                                     start_block=deployment.block_number)
        await self.secrets.load()
        self.messaging = Messaging(self.signer, cfg.nats_url, seen_log=self.store)
        await self.messaging.connect()
        if not await self.messaging.may_publish(subject(ZERO_ADDRESS, self.address,
                                                        "node.probe")):
            await self.messaging.close()
            await self.store.run(self.store.close)
            raise RuntimeError(
                f"NATS does not let {self.address} publish to users: its address is not in "
                "the auth service's node list (connext nats-auth --node, docs/NATS.md)")
        self.deposits = ChainDeposits(self.w3)
        self.policy = NodePolicy(cfg, self.definition_names, self.address, self.store)
        self.swaps = SwapDesk(
            cfg.swaps, self.signer, chain_id=self.network.chain_id,
            test_token=deployment.test_token, store=self.store,
            hashlock=deployment.definitions["Hashlock"], limits_for=cfg.limits_for,
            collateral_for=cfg.collateral_for, channel_address_for=self.channel_address_for,
        )
        self.policy.swaps = self.swaps
        self.engine = ChannelEngine(
            self.signer, self.store, self.messaging, self.rules, self.deposits,
            request_timeout=cfg.request_timeout, yields_on_collision=False,
            shared_database=cfg.shared_database, policy=self.policy.check,
        )
        self.txs = TransactionManager(self.w3, cfg.private_key, self.store)
        await self.txs.start()
        self.onchain = NodeChain(self.w3, self.txs, deployment.channel_factory)
        self.profiles = Profiles(cfg, self.store)
        await self.profiles.load()
        self.collateral = Collateral(
            self.engine, self.profiles.for_channel, self._deposit_on_chain,
            self.deposits.total_deposits,
        )
        self.liquidity = LiquidityWatch(
            self.w3, self.store, self.address, cfg,
            assets=[*cfg.collateral, *cfg.limits,
                    *([deployment.test_token] if deployment.test_token else [])],
            on_reading=self._liquidity_reading)
        self._registering: set[bytes] = set()
        self.router = Router(
            self.engine, self.store,
            definition_names=self.definition_names,
            fee_fixed=cfg.fee_fixed,
            reveal_delta=cfg.reveal_delta,
            collateralize=self.collateral.ensure,
            find_channel=self.find_channel,
            on_event=self._payment_event,
            enforcement=Enforcement(
                chain_id=self.network.chain_id,
                registered=lambda lock: self.secrets.registered.get(lock, 0),
                preimage=self.secrets.preimages.get,
                register=self._register_secret,
                dispute=self._dispute_to_collect,
                reveal_margin=cfg.reveal_margin,
                dispute_unsettled_after=cfg.dispute_unsettled_after,
                disputed=lambda channel: channel in self.engine.disputed,
            ),
            on_failure=self._background_failure,
            swap_quote=self.swaps.quote_of,
            swap_terms=self.swaps.terms_of,
            swap_claim_window=cfg.swaps.claim_window,
            release_collateral=self.collateral.release,
        )
        self.engine.companion = self.router.companion
        self.withdrawals = Withdrawals(self.engine, self.onchain, self.notify)
        self.reclaims = Reclaims(self.engine, self.onchain, deployment.definitions["Withdraw"],
                                 timeout=cfg.bounds.min_transfer_timeout,
                                 on_reclaimed=self._reclaimed)
        self.idle = IdleReclaim(self.store, self.engine, self.reclaims, cfg,
                                on_failure=self._background_failure,
                                profile_for=self.profiles.for_channel,
                                busy=self.collateral.busy)
        self.watcher = DepositWatcher(
            self.w3, self.store, self.deposits, self._reconcile_user_deposit,
            start_block=deployment.block_number,
        )
        self.exits = NodeExits(self.w3, self.store, self.engine, self.txs,
                               hashlock=deployment.definitions["Hashlock"],
                               registered_preimage=self.secrets.preimages.get)
        self.watchtower = Watchtower(
            self.w3, self.store, self.address, self._answer_dispute,
            start_block=deployment.block_number, on_disputed=self.engine.stop_updating,
            on_resolved=self._resolved_on_chain,
        )
        self.recovery = Recovery(
            self.engine,
            pending_channels=lambda: self.store.run(self.store.pending_channels),
            transfers=self._withdrawals_to_answer,
            duties={("Withdraw", RESPONDER): self._answer_withdrawal},
            definition_names=self.definition_names,
            follow_ups=[self.router.sweep],
            interval=cfg.sweep_interval,
            on_failure=self._background_failure,
        )
        self.engine.on_commit(self._on_commit)
        for method, handler in self._handlers().items():
            self._bind(method, handler)
        await self.messaging.serve(queue="node")
        from .http import start_http

        self._http_runner, self.http_port = await start_http(self)
        channels = await self.store.run(self.store.list_channels, party=self.address)
        recovered = await self.router.recover([c.channel_address for c in channels])
        if recovered:
            log.info("recovered %d payments that were stored but not yet routed", recovered)
        self._tasks.append(asyncio.create_task(self.recovery.run()))
        self._tasks.append(asyncio.create_task(self._pay_unpaid_withdrawals()))
        self._tasks.append(asyncio.create_task(self.watcher.run()))
        self._tasks.append(asyncio.create_task(self.secrets.run()))
        self._tasks.append(asyncio.create_task(self.idle.run()))
        await self.swaps.start()
        self._tasks.append(asyncio.create_task(self.swaps.run()))
        self._tasks.append(asyncio.create_task(self.liquidity.run()))
        if cfg.shared_database:  # profiles another replica set reach this one
            self._tasks.append(asyncio.create_task(every(
                cfg.reclaim_interval, self.profiles.load, "reloading collateral profiles")))
        disputed = await self.watchtower.recover()
        if disputed:
            log.warning("%d channels are disputed on chain: they take no more updates",
                        disputed)
        self._tasks.append(asyncio.create_task(self.watchtower.run()))
        self._tasks.append(asyncio.create_task(self.exits.run()))
        log.info("node %s serving on %s", self.address, cfg.nats_url)

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http_runner.cleanup()
        await self.messaging.close()
        await self.txs.stop()
        await self.store.run(self.store.close)

    def rules(self) -> Rules:
        return Rules(
            definitions={addr: DEFINITIONS[name] for addr, name in self.definition_names.items()},
            now=int(time.time()),
            bounds=self.config.bounds,
            registered=self.secrets.registered,
        )

    def _bind(self, method: str, handler: Handler) -> None:
        async def on_message(envelope: Any) -> dict[str, Any]:
            started = time.perf_counter()
            try:
                return await handler(envelope.sender, envelope.body)
            except errors.ProtocolError as exc:
                self.metrics.failures.labels(method=method, code=exc.code).inc()
                raise
            finally:
                self.metrics.request_seconds.labels(method=method).observe(
                    time.perf_counter() - started
                )

        self.messaging.handle(method, on_message, replay_safe=method in REPLAY_SAFE,
                              payload_signed=method in PAYLOAD_SIGNED)

    def _handlers(self) -> dict[str, Handler]:
        return {
            **self.engine.handlers(),
            "node.info": self._info,
            "channel.setup": self._setup,
            "channel.online": self._online,
            "party.public_key": self._public_key,
            "link.redeem": self._link_redeem,
            "link.cancel": self._link_cancel,
            "link.status": self._link_status,
            "swap.quote": self._swap_quote,
        }

    # --- requests from users ----------------------------------------------------------

    async def _info(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        return self.info()

    def info(self) -> dict[str, Any]:
        cfg = self.config
        bounds = cfg.bounds
        return {
            "address": self.address,
            "publicKey": "0x" + self.signer.public_key.hex(),
            "network": network_to_json(self.network),
            "definitions": dict(self.deployment.definitions),
            "secretRegistry": self.deployment.secret_registry,
            "testToken": self.deployment.test_token,
            "channelTimeout": str(cfg.channel_timeout),
            "feeFixed": str(cfg.fee_fixed),
            "revealDelta": str(cfg.reveal_delta),
            "bounds": {
                "minChannelTimeout": str(bounds.min_channel_timeout),
                "maxChannelTimeout": str(bounds.max_channel_timeout),
                "minTransferTimeout": str(bounds.min_transfer_timeout),
                "maxTransferTimeout": str(bounds.max_transfer_timeout),
            },
            "limits": {asset: _limits_json(cfg.limits_for(asset))
                       for asset in {*cfg.limits, *cfg.collateral}},
            "defaultLimits": _limits_json(DEFAULT_LIMITS),
            **self.swaps.info(),
        }

    async def _setup(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        """Open (or return) the channel between the node (alice) and the sender (bob)."""
        public_key = parse_bytes(body.get("publicKey"), "publicKey", 65)
        if keccak(public_key[1:])[12:] != bytes.fromhex(sender[2:]):
            raise errors.InvalidUpdate("publicKey is not the sender's key")
        self.policy.setups.check(sender)
        await self.store.run(self.store.set_public_key, sender, public_key)
        address = self.channel_address_for(sender)
        stored = await self.engine.channel(address)
        if stored is None:
            try:
                await self.engine.propose_setup(
                    setup_update(self.address, sender, self.network, self.config.channel_timeout)
                )
                self.metrics.channels.inc()
            except errors.ChannelAlreadySetUp:
                pass
            stored = await self.engine.channel(address)
            assert stored is not None
        return {"channelAddress": address, "state": state_to_json(stored.state)}

    async def _online(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        """A user (re)connected: deliver what waited for it, settle what it owes."""
        address = self.channel_address_for(sender)
        task = asyncio.create_task(self.router.sweep(only_channel=address))
        task.add_done_callback(_log_failure)
        return {"channelAddress": address}

    async def _public_key(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        address = parse_address(body.get("address"), "address")
        key = await self.store.run(self.store.get_public_key, address)
        if key is None:
            raise errors.ChannelNotSetUp(f"{address} has no channel with this node")
        return {"address": address, "publicKey": "0x" + key.hex()}

    # --- swaps (see swaps.py) ---------------------------------------------------------

    async def _swap_quote(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        """A signed quote for the sender: {assetIn, assetOut, amountIn, ttl?} -> quote."""
        asset_in = parse_address(body.get("assetIn"), "assetIn")
        asset_out = parse_address(body.get("assetOut"), "assetOut")
        amount_in = parse_uint(body.get("amountIn"), "amountIn")
        ttl = body.get("ttl")
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool)):
            raise MalformedData("ttl must be an integer number of seconds")
        quote = self.swaps.quote(sender, asset_in, asset_out, amount_in, ttl=ttl)
        return {"quote": quote_to_json(quote)}

    # --- link payments (see routing.py) -----------------------------------------------

    async def _link_redeem(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        """Claim a link into the sender's channel: {routingId, signature} -> {transferId}
        of the forward (double-signed when this replies)."""
        routing_id = parse_bytes(body.get("routingId"), "routingId", 32)
        signature = parse_bytes(body.get("signature"), "signature", 65)
        forward_id = await self.router.redeem_link(routing_id, signature, sender)
        return {"transferId": hexb(forward_id)}

    async def _link_cancel(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        """The creator cancels its unclaimed link; replies once the refund is committed."""
        routing_id = parse_bytes(body.get("routingId"), "routingId", 32)
        await self.router.cancel_link(routing_id, sender)
        return {"status": "cancelled"}

    async def _link_status(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        routing_id = parse_bytes(body.get("routingId"), "routingId", 32)
        return await self.router.link_status(routing_id)

    # --- channels -----------------------------------------------------------------------

    def channel_address_for(self, user: Address) -> Address:
        net = self.network
        return channel_address(net.channel_factory, net.channel_mastercopy, self.address, user,
                               net.chain_id)

    async def find_channel(self, user: Address) -> ChannelState | None:
        stored = await self.engine.channel(self.channel_address_for(user))
        return None if stored is None else stored.state

    async def _deposit_on_chain(self, state: ChannelState, asset_id: Address,
                                amount: int) -> None:
        receipt = await self.onchain.deposit(state, asset_id, amount)
        self.metrics.collateral.labels(asset=asset_id).inc(amount)
        self.metrics.collateral_transactions.labels(asset=asset_id, kind="deposit").inc()
        await self.store.run(self.store.append_event, state.channel_address,
                             "collateral.deposited", {
                                 "assetId": asset_id, "amount": str(amount),
                                 "transactionHash": "0x" + bytes(receipt["transactionHash"]).hex(),
                             })

    async def _reconcile_user_deposit(self, state: ChannelState, asset_id: Address) -> None:
        if state.alice == self.address:
            await self.collateral.reconcile(state.channel_address, asset_id)

    async def _register_secret(self, preimage: bytes) -> None:
        """Reveal a preimage on chain (once at a time per lock) and read it back at once,
        so the settlement that needs it does not wait for the next scan."""
        lock = lock_hash(preimage)
        if lock in self._registering or lock in self.secrets.registered:
            return
        self._registering.add(lock)
        try:
            await self.txs.submit(self.secrets.register_call(preimage), purpose="register")
            self.metrics.secrets_registered.inc()
            await self.secrets.scan()
        finally:
            self._registering.discard(lock)

    async def _dispute_to_collect(self, channel_address: Address) -> None:
        """A sender stayed silent with a payment it owes us: close its channel on chain
        with our latest state; the exits collect after the window."""
        await self.engine.stop_updating(channel_address)
        stored = await self.engine.channel(channel_address)
        if stored is None:
            return
        await self.exits.dispute(stored)
        self.metrics.channels_disputed.inc()

    async def _resolved_on_chain(self, channel_address: Address, transfer_id: bytes,
                                 resolver: bytes) -> None:
        """A transfer of one of our channels was resolved on chain: if it was a forward of
        ours, the sender pays us with the same resolver."""
        forward = await self.store.run(self.store.get_transfer, transfer_id,
                                       channel_address=channel_address)
        if forward is not None and forward.initiator == self.address:
            await self.router.settle_with_resolver(forward, resolver)

    def _background_failure(self, task: str) -> None:
        self.metrics.background_failures.labels(task=task).inc()

    def _reclaimed(self, asset_id: Address, amount: int) -> None:
        self.metrics.collateral_reclaimed.labels(asset=asset_id).inc(amount)
        self.metrics.collateral_transactions.labels(asset=asset_id, kind="reclaim").inc()

    def _liquidity_reading(self, reading: AssetLiquidity) -> None:
        asset = reading.asset_id
        self.metrics.liquidity_onchain.labels(asset=asset).set(reading.on_chain)
        self.metrics.liquidity_in_channels.labels(asset=asset).set(reading.in_channels)
        self.metrics.liquidity_low.labels(asset=asset).set(1 if reading.low else 0)

    async def _answer_dispute(self, stored: StoredChannel, dispute: ChannelDispute) -> None:
        """The watchtower saw a stale state disputed: put our latest one on chain."""
        await self.exits.dispute(stored)
        log.warning("channel %s: answered the dispute of state %d with state %d",
                    stored.state.channel_address, dispute.nonce, stored.state.nonce)

    # --- reacting to stored updates ---------------------------------------------------

    async def _on_commit(self, committed: Committed) -> None:
        """React to a stored update; a failure is counted (and logged by the engine), and
        the sweep retries what it left undone."""
        try:
            await self._react(committed)
        except Exception:
            self._background_failure("commit")
            raise

    async def _react(self, committed: Committed) -> None:
        update, applied = committed.update, committed.applied
        transfer = applied.transfer
        if transfer is None:
            if update.type is UpdateType.DEPOSIT:
                self.metrics.deposits.inc()
            return
        definition = self.definition_names.get(transfer.transfer_definition)
        if committed.initiated_by_us:
            if (update.type is UpdateType.RESOLVE and definition == "Withdraw"
                    and transfer.responder == self.address):
                await self.withdrawals.on_settled(applied.state, transfer)
            return
        if update.type is UpdateType.CREATE and transfer.responder == self.address:
            if definition == "Withdraw":
                await self.withdrawals.on_created(applied.state, transfer)
            elif routing_id_of(transfer) is not None:
                self.metrics.payments.labels(status="received").inc()
                await self.router.forward(transfer)
        elif update.type is UpdateType.RESOLVE and transfer.initiator == self.address:
            if definition == "Withdraw" and "reclaim" in transfer.meta:
                await self.reclaims.on_resolved(applied.state, transfer, self.withdrawals)
                if transfer.balance.amount[0] == 0 and transfer.resolver is not None:
                    await self.store.run(self.store.append_event, transfer.channel_address,
                                         "collateral.reclaimed", {
                                             "assetId": transfer.asset_id,
                                             "amount": str(transfer.meta["reclaim"])})
            elif routing_id_of(transfer) is not None:
                await self.router.settle_sender(transfer)
                await self._maybe_reclaim(routing_id_of(transfer))

    async def _maybe_reclaim(self, routing_id: bytes | None) -> None:
        """After a payment settled, take back what the node holds above the reclaim
        threshold in the sender's channel (down to the collateral target)."""
        if routing_id is None:
            return
        routing = await self.store.run(self.store.get_routing, routing_id)
        if routing is None:
            return
        stored = await self.engine.channel(routing.sender_channel)
        if stored is None:
            return
        await self.idle.above_threshold(stored.state, routing.asset_id)

    def _payment_event(self, kind: str, data: dict[str, Any]) -> None:
        status = kind.split(".", 1)[1]
        self.metrics.payments.labels(status=status).inc()
        if status == "resolved":
            self.metrics.volume.labels(asset=data.get("assetId", "")).inc(
                int(data.get("amount", "0"))
            )
            self.metrics.fees.labels(asset=data.get("assetId", "")).inc(int(data.get("fee", "0")))
            if "recipientAssetId" in data:
                self.metrics.swaps.labels(from_asset=data.get("assetId", ""),
                                          to_asset=data["recipientAssetId"]).inc()

    async def notify(self, user: Address, method: str, body: dict[str, Any]) -> None:
        """Tell a user's client something (best effort; it can also ask later)."""
        try:
            await self.messaging.publish(user, method, body)
        except Exception:
            log.info("could not notify %s of %s", user, method)

    async def _withdrawals_to_answer(self) -> list[Transfer]:
        """Users' withdrawals we have not answered yet (the recovery's work list)."""
        records = await self.store.run(self.store.transfers_of,
                                       self.deployment.definitions["Withdraw"],
                                       self.address, active=True)
        return [r.transfer for r in records if r.transfer.responder == self.address]

    async def _answer_withdrawal(self, transfer: Transfer) -> None:
        stored = await self.engine.channel(transfer.channel_address)
        if stored is not None and transfer.transfer_id in stored.transfers:
            await self.withdrawals.on_created(stored.state, transfer)

    async def _pay_unpaid_withdrawals(self) -> None:
        """After a restart: withdrawals and reclaims settled in a channel but never paid on
        chain (the node stopped in between) are paid now."""
        since = datetime.now(UTC) - timedelta(seconds=self.config.bounds.max_transfer_timeout)
        try:
            paid = await self.withdrawals.pay_unpaid(
                self.store, self.deployment.definitions["Withdraw"], since)
        except Exception:
            log.exception("paying unpaid withdrawals failed")
            self._background_failure("withdrawals")
            return
        if paid:
            log.warning("paid %d withdrawals that a restart had cut off", paid)


def _limits_json(limits: AssetLimits) -> dict[str, str]:
    return {"minPayment": str(limits.min_payment), "minWithdrawal": str(limits.min_withdrawal),
            "withdrawalFee": str(limits.withdrawal_fee)}


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())


__all__ = ["MalformedData", "Node"]
