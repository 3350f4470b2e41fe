"""The channel engine: runs the update protocol for one party over all of its channels.

Shared by the node and the client. It proposes updates (sign, persist, send, verify the
countersignature, commit), answers the counterparty's proposals (rebuild, validate,
countersign, commit, reply), catches up when one step behind, and restores a channel from
the counterparty after verifying everything. One update is in flight per channel: an
asyncio lock in this process and a compare-and-swap on the stored nonce across processes.
It never signs a state it has not persisted first, and never acts on a state that is not
double-signed and stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..messaging import MessagingTimeout, RemoteError
from ..protocol import errors
from ..protocol.channel import (
    ActiveTransfers,
    Applied,
    Rules,
    apply_update,
    propose,
    transfers_root,
    validate_update,
    verify_channel_state,
)
from ..protocol.serialization import (
    MalformedData,
    state_from_json,
    state_to_json,
    transfer_from_json,
    transfer_to_json,
    update_from_json,
    update_to_json,
)
from ..protocol.signing import Signer, verify
from ..protocol.types import (
    Address,
    ChannelState,
    CreateDetails,
    DepositDetails,
    Update,
    UpdateType,
)
from ..store import ChannelStore, RoutingChange, StaleWrite, StoredChannel
from .lock import ChannelLock

log = logging.getLogger(__name__)

UPDATE_METHOD = "protocol.update"
SYNC_METHOD = "protocol.sync"
ACCEPT_METHOD = "protocol.accept"
"""A notification: the countersigned copy of the proposal a party attached to its reply
(`FollowUp`), sent back to it by the party that took it."""
REPLAY_SAFE = frozenset({UPDATE_METHOD, SYNC_METHOD, ACCEPT_METHOD})
"""Methods a replay cannot abuse: an update names its nonce (a replay is answered with the
stored copy, or refused as stale), a sync only reads, and an accept only completes the
pending proposal it carries the countersignature of (a replay finds it committed)."""
PAYLOAD_SIGNED = frozenset({UPDATE_METHOD, ACCEPT_METHOD})
"""Methods whose body authenticates itself: an update's initiator signed it (the handler
checks that the initiator is the sender), and the reply is the countersigned update; an
accept carries the counterparty's signature on our own pending proposal. Their messages go
without envelope signatures (a replay is harmless, see `REPLAY_SAFE`)."""
MAX_ATTEMPTS = 40
BUSY_PATIENCE = 60.0
"""An update that keeps racing the counterparty's is given up (ChannelBusy) only after
MAX_ATTEMPTS tries and this many seconds: a retry woken as soon as the counterparty's
update landed can race its next one at once, so under load tries alone run out fast."""
MAX_TIMEOUT_RETRIES = 2


class ChannelBusy(errors.ProtocolError):
    """The counterparty is running its own update on this channel; retry on top of it."""

    code = "channel_busy"


class OutOfSync(errors.ProtocolError):
    """The parties' channel states are too far apart to catch up in place."""

    code = "out_of_sync"


class Transport(Protocol):
    """What the engine needs from messaging (connext.messaging.Messaging fits). An update
    request passes `check_result`, which raises unless a reply carries the responder's
    countersignature: it goes payload-signed (see `PAYLOAD_SIGNED`)."""

    async def request(
        self, to: Address, method: str, body: dict[str, Any], *, timeout: float = ...,
        check_result: Callable[[dict[str, Any]], None] | None = ...,
    ) -> dict[str, Any]: ...

    async def publish(self, to: Address, method: str, body: dict[str, Any], *,
                      signed: bool = ...) -> None: ...


class RemoteFailure(Protocol):
    code: str
    message: str


class DepositSource(Protocol):
    """On-chain deposit totals of a channel: (alice's total, bob's total) for an asset."""

    async def total_deposits(self, state: ChannelState, asset_id: Address) -> tuple[int, int]: ...


@dataclass(frozen=True)
class Committed:
    """A double-signed update this party has stored, and what it did."""

    update: Update
    applied: Applied
    initiated_by_us: bool
    previous: ChannelState | None = None
    """The state the update was applied to (None for a setup)."""
    events: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    """The activity-log events stored with it (the engine's `records`)."""
    followed_by: Update | None = None
    """Our own proposal built on it, stored as pending in its commit and sent with our
    reply (the engine's `follow_up`): it completes when the counterparty accepts it."""


Listener = Callable[[Committed], Coroutine[Any, Any, None]]
VoidListener = Callable[[Update], Coroutine[Any, Any, None]]
"""Told of a proposal of ours that can never land (the node signed another update at its
nonce): what it meant to do, e.g. a payment, must be proposed again to happen at all."""
RulesProvider = Callable[[], Rules]
Policy = Callable[[Update, Applied], Awaitable[None]]
"""A party's own conditions on an update the counterparty proposes, beyond the protocol's
rules (minimum amounts, rate limits, ...): raise a ProtocolError to refuse it unsigned."""
Companion = Callable[[Update, Applied], Sequence[RoutingChange]]
"""What a party records in the same transaction as its commit of an update the
counterparty proposed (the node: the routing record of a payment to forward)."""
Records = Callable[[Committed], Sequence[tuple[str, Mapping[str, Any]]]]
"""The activity-log events (kind, payload) a commit stores in its own transaction (the
client: "transfer.sent", "transfer.received", ...): no event is lost to a crash between
the commit and a write of its own, and a payment costs no extra transaction per event."""
FollowUp = Callable[[Update, Applied], Update | None]
"""The update a party proposes right on top of one the counterparty proposed and it takes
(the client: the resolve of a payment to it whose preimage it can open), or None. It is
signed and stored as pending in the commit of the counterparty's update, and goes out with
the countersignature: the counterparty commits both at once and sends back its own
signature on it (`ACCEPT_METHOD`), so the second update costs no request of its own. If
the counterparty does not take it, it stays pending and is re-sent like any proposal of
ours whose fate is unknown (`finish_pending`)."""


class ChannelEngine:
    def __init__(
        self,
        signer: Signer,
        store: ChannelStore,
        transport: Transport,
        rules: RulesProvider,
        deposits: DepositSource,
        *,
        request_timeout: float = 10.0,
        yields_on_collision: bool = True,
        shared_database: bool = False,
        policy: Policy | None = None,
        companion: Companion | None = None,
        records: Records | None = None,
        follow_up: FollowUp | None = None,
    ) -> None:
        """`yields_on_collision`: the client waits for the node's update when both propose
        at once; the node (False) refuses the client's with `ChannelBusy` and wins.
        `shared_database`: other processes may write these channels too (node replicas),
        so a cached channel is checked against the stored nonce before it is used."""
        self.signer = signer
        self.address = signer.address
        self.store = store
        self.transport = transport
        self.rules = rules
        self.deposits = deposits
        self.request_timeout = request_timeout
        self.yields_on_collision = yields_on_collision
        self.shared_database = shared_database
        self.policy = policy
        self.companion = companion
        self.records = records
        self.follow_up = follow_up
        self._locks: dict[Address, ChannelLock] = {}
        self._landed: dict[Address, asyncio.Event] = {}
        self._proposing: dict[Address, int] = {}  # the nonce of our update on the wire
        self._waiting: set[Address] = set()  # a counterparty's update waits for ours
        self._cache: dict[Address, StoredChannel] = {}
        self._listeners: list[Listener] = []
        self._void_listeners: list[VoidListener] = []
        self.disputed: set[Address] = set()
        """Channels disputed on chain: no update is proposed or countersigned in them any
        more (a later state would not count, or would have to be disputed again)."""

    # --- wiring -----------------------------------------------------------------------

    def on_commit(self, listener: Listener) -> None:
        """Call `listener` after every stored double-signed update (in its own task)."""
        self._listeners.append(listener)

    def on_void(self, listener: VoidListener) -> None:
        """Call `listener` with each proposal of ours found void (in its own task)."""
        self._void_listeners.append(listener)

    def _voided(self, update: Update) -> None:
        for listener in self._void_listeners:
            task = asyncio.get_running_loop().create_task(listener(update))
            task.add_done_callback(_log_task_failure)

    def handlers(self) -> dict[str, Callable[[Address, dict[str, Any]], Awaitable[dict[str, Any]]]]:
        """Messaging handlers by method: (sender address, body) -> reply body."""
        return {UPDATE_METHOD: self.handle_update, SYNC_METHOD: self.handle_sync,
                ACCEPT_METHOD: self.handle_accept}

    async def stop_updating(self, channel_address: Address) -> None:
        """The channel is disputed on chain: refuse every further update in it, proposed
        or received, and return once the one in flight (if any) has finished."""
        self.disputed.add(channel_address)
        async with self.lock(channel_address):
            pass

    def lock(self, channel_address: Address) -> ChannelLock:
        lock = self._locks.get(channel_address)
        if lock is None:
            lock = self._locks[channel_address] = ChannelLock()
        return lock

    # --- reading ----------------------------------------------------------------------

    async def channel(self, channel_address: Address) -> StoredChannel | None:
        """The latest stored channel. A copy cached in memory is used only while the
        database still has its nonce (another process may have moved the channel on)."""
        cached = self._cache.get(channel_address)
        if cached is not None:
            if not self.shared_database:
                return cached
            nonce = await self.store.run(self.store.channel_nonce, channel_address)
            if nonce == cached.state.nonce:
                return cached
        stored = await self.store.run(self.store.get_channel, channel_address)
        if stored is not None and transfers_root(stored.transfers) != stored.state.merkle_root:
            raise errors.MerkleRootMismatch(
                f"stored transfers of {channel_address} do not match its state "
                f"(nonce {stored.state.nonce}, {len(stored.transfers)} active)"
            )
        if stored is not None:
            # a read that raced a commit must not replace the newer copy the commit cached
            current = self._cache.get(channel_address)
            if current is None or current.state.nonce < stored.state.nonce:
                self._cache[channel_address] = stored
        return stored

    # --- proposing ----------------------------------------------------------------------

    async def propose(
        self,
        channel_address: Address,
        build: Callable[[ChannelState, ActiveTransfers], Update],
        *,
        routings: Sequence[RoutingChange] = (),
    ) -> Committed:
        """Run one update built by `build` on top of the latest state, retrying on races.

        `build` is called again after every catch-up, so it must derive the update from
        the state it is given. Protocol errors of our own update propagate unchanged.
        `routings` are stored in the same transaction as the update, once it commits.
        """
        if channel_address in self.disputed:
            raise errors.ChannelDisputed()
        timeouts = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_PATIENCE
        attempt = -1
        while (attempt := attempt + 1) < MAX_ATTEMPTS or loop.time() < deadline:
            try:
                async with self.lock(channel_address):
                    if channel_address in self.disputed:  # disputed while we waited
                        raise errors.ChannelDisputed()
                    stored = await self.channel(channel_address)
                    if stored is None:
                        raise errors.ChannelNotSetUp(f"no channel {channel_address}")
                    update = build(stored.state, stored.transfers)
                    pending = stored.pending_update
                    if pending is not None and pending.nonce == stored.state.nonce + 1:
                        # We signed this before and never learnt its fate: finish it first.
                        # Signing anything else at this nonce could give the counterparty
                        # two states with the same nonce (equivocation).
                        same = _same_update(pending, update)
                        done = await self._run(stored, pending, resend=True,
                                               routings=routings if same else ())
                        if same:
                            return done
                        stored = await self.channel(channel_address)
                        assert stored is not None
                        update = build(stored.state, stored.transfers)
                    await self._refuse_reused_transfer_id(update)
                    return await self._run(stored, update, routings=routings)
            except MessagingTimeout:
                # Safe to retry: our signed update stays pending and is re-sent as it is.
                timeouts += 1
                if timeouts > MAX_TIMEOUT_RETRIES:
                    raise
                log.info("no answer on %s; retrying the same update", channel_address)
            except (ChannelBusy, errors.StaleNonce, StaleWrite) as exc:
                log.debug("update on %s raced (%s), attempt %d", channel_address, exc, attempt)
                self._cache.pop(channel_address, None)
                if not isinstance(exc, ChannelBusy):
                    await self.sync(channel_address)
                # The counterparty's update is on its way to us: retry as soon as it is
                # stored (its lock is free then), or after a jittered backoff.
                landed = self._landed.setdefault(channel_address, asyncio.Event())
                landed.clear()
                backoff = random.uniform(0.001, min(0.25, 0.004 * 2**min(attempt, 8)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(landed.wait(), backoff * 4)
        raise ChannelBusy(f"channel {channel_address} stayed busy after {attempt} tries")

    async def finish_pending(self, channel_address: Address) -> Committed | None:
        """Re-send our unsettled proposal in this channel once, if there is one: the
        counterparty takes it now, or answers with the copy it countersigned before (its
        reply was lost). None when nothing was pending."""
        async with self.lock(channel_address):
            stored = await self.channel(channel_address)
            pending = None if stored is None else stored.pending_update
            if stored is None or pending is None:
                return None
            if pending.nonce <= stored.state.nonce:
                # The channel moved past it: it landed, or (the counterparty signed another
                # update at its nonce) it never will. Either way it is done here; what it
                # meant to do is proposed again (a landed create is then refused as a
                # duplicate transfer, so nothing happens twice).
                await self.store.run(self.store.clear_pending, channel_address)
                self._cache[channel_address] = replace(stored, pending_update=None)
                if pending.initiator == self.address and not _same_update(
                        stored.latest_update, pending):
                    self._voided(pending)
                return None
            if pending.nonce != stored.state.nonce + 1:
                return None
            return await self._run(stored, pending, resend=True)

    async def _refuse_reused_transfer_id(self, update: Update) -> None:
        """A transfer id is used once per channel, ever. The state machine only sees the
        active transfers, so a create re-using the id of a resolved transfer would pass it:
        that happens when a create that landed is rebuilt after a race (its reply lost, the
        channel moved on and resolved it meanwhile), and would lock the funds a second time
        (and, on chain, both would share one dispute record)."""
        details = update.details
        if update.type is not UpdateType.CREATE or not isinstance(details, CreateDetails):
            return
        existing = await self.store.run(self.store.get_transfer, details.transfer_id,
                                        channel_address=update.channel_address)
        if existing is not None:
            raise errors.DuplicateTransfer(
                f"transfer 0x{details.transfer_id.hex()} was created in this channel before")

    async def propose_setup(self, update: Update) -> Committed:
        """The first update of a new channel (there is no stored state to lock on yet)."""
        async with self.lock(update.channel_address):
            stored = await self.channel(update.channel_address)
            if stored is not None:
                raise errors.ChannelAlreadySetUp(f"channel {update.channel_address} exists")
            return await self._run(None, update)

    async def _run(self, stored: StoredChannel | None, update: Update, *,
                   resend: bool = False, routings: Sequence[RoutingChange] = ()) -> Committed:
        state = None if stored is None else stored.state
        transfers: ActiveTransfers = {} if stored is None else stored.transfers
        if resend:
            # the pending update carries our signature already: re-send it byte for byte
            try:
                applied = apply_update(state, transfers, update, self.rules())
            except errors.ProtocolError:
                # No longer valid (e.g. expired): the counterparty cannot take it now either.
                # Unless it took it earlier (then sync brings it in), drop it.
                await self.sync_unlocked(update.channel_address)
                await self.store.run(self.store.clear_pending, update.channel_address)
                self._cache.pop(update.channel_address, None)
                raise errors.StaleNonce("our unsettled update expired; rebuilding") from None
            signed = update
        # from the signature on, the counterparty's update at this nonce is a true
        # collision (refused at once); one built on ours waits for our commit (_admitted)
        self._proposing[update.channel_address] = update.nonce
        try:
            if not resend:
                signed, applied = propose(state, transfers, update, self.signer,
                                          self.rules())
                await self.store.run(self.store.save_pending, update.channel_address, signed)
                if stored is not None:
                    self._cache[update.channel_address] = replace(stored,
                                                                  pending_update=signed)
            body: dict[str, Any] = {"update": update_to_json(signed)}
            if stored is not None and stored.latest_update is not None:
                body["previous"] = update_to_json(stored.latest_update)
            return await self._settle(stored, update, signed, applied, body, routings)
        finally:
            self._proposing.pop(update.channel_address, None)

    async def _settle(self, stored: StoredChannel | None, update: Update, signed: Update,
                      applied: Applied, body: dict[str, Any],
                      routings: Sequence[RoutingChange]) -> Committed:
        """Send our signed update, check the countersignature, commit."""
        state = None if stored is None else stored.state
        responder_party = applied.state.party(update.responder)
        checked: list[Update] = []

        def countersigned(reply: dict[str, Any]) -> None:
            """The reply carries the responder's signature on our update (it is not signed
            itself: the update is the authentication)."""
            try:
                theirs = update_from_json(reply.get("update"), "update.")
            except MalformedData as exc:
                raise errors.InvalidUpdate(
                    f"malformed countersigned update: {exc.message}") from exc
            signature = (theirs.alice_signature if responder_party == "alice"
                         else theirs.bob_signature)
            if signature is None or not verify(applied.digest, signature, update.responder):
                raise errors.InvalidSignature("the counterparty's countersignature is invalid")
            checked.append(signed.with_signature(responder_party, signature))

        try:
            reply = await self.transport.request(
                update.responder, UPDATE_METHOD, body, timeout=self.request_timeout,
                check_result=countersigned,
            )
        except Exception as exc:
            if self.yields_on_collision and _is_refusal(exc):
                # The node refused this exact update in a signed reply: like a proposal of
                # its own at this nonce, that says it will not countersign it, so we may
                # propose another. (The node never trusts a user's refusal: the user
                # could still countersign its proposal alone; it stays pending there.)
                await self.store.run(self.store.clear_pending, update.channel_address)
                if stored is not None:
                    self._cache[update.channel_address] = replace(stored, pending_update=None)
            _reraise_remote(exc)
            raise
        if not checked:  # a transport that does not check results
            countersigned(reply)
        final = checked[-1]
        committed = Committed(final, applied, initiated_by_us=True, previous=state)
        committed = await self._commit(committed, routings)
        self._notify(committed)
        if reply.get("next") is not None:  # the responder's own update on top of ours
            await self._take_follow_up(update.channel_address, update.responder,
                                       reply["next"])
        return committed

    async def _take_follow_up(self, channel_address: Address, responder: Address,
                              raw: Any) -> None:
        """Answer the update the responder attached to its countersignature as if it had
        come in a request of its own (the same checks; we hold the channel's lock), and
        send it back countersigned. A follow-up we do not take changes nothing here: the
        responder keeps it pending and may propose it again."""
        try:
            theirs = update_from_json(raw, "next.")
            self._check_addressed(responder, theirs)
            if theirs.channel_address != channel_address:
                raise errors.InvalidUpdate("the follow-up is for another channel")
            answer = await self._respond(theirs, None, follow_up=False)
        except errors.ProtocolError as exc:
            log.info("did not take the follow-up of %s on its countersignature: %s",
                     responder, exc)
            return
        except Exception as exc:  # e.g. another process moved the channel on (StaleWrite)
            self._cache.pop(channel_address, None)  # read it from the store again
            log.warning("could not take the follow-up of %s: %s", responder, exc)
            return
        try:
            await self.transport.publish(responder, ACCEPT_METHOD, answer, signed=False)
        except Exception as exc:  # it re-sends its proposal and gets our copy then
            log.info("could not send the accept to %s: %s", responder, exc)

    async def _commit(self, committed: Committed,
                      routings: Sequence[RoutingChange] = ()) -> Committed:
        """Store `committed` (with its routing changes and events: one transaction); it is
        returned with the events it stored."""
        update, applied, previous = committed.update, committed.applied, committed.previous
        events: Sequence[tuple[str, Mapping[str, Any]]] = ()
        if self.records is not None:
            try:
                events = self.records(committed)
            except Exception:  # an event is not worth losing the commit
                log.exception("the events of update %d in %s", update.nonce,
                              update.channel_address)
        created = applied.transfer if update.type is UpdateType.CREATE else None
        resolved = applied.transfer if update.type is UpdateType.RESOLVE else None
        address = update.channel_address
        self._cache.pop(address, None)
        await self.store.run(
            self.store.commit_update,
            applied.state,
            update,
            created=created,
            resolved=resolved,
            expected_nonce=0 if previous is None else previous.nonce,
            events=events,
            routings=routings,
            next_pending=committed.followed_by,
        )
        self._cache[address] = StoredChannel(
            state=applied.state, latest_update=update, pending_update=committed.followed_by,
            transfers=applied.transfers,
        )
        return replace(committed, events=tuple(events)) if events else committed

    def _notify(self, committed: Committed) -> None:
        landed = self._landed.get(committed.update.channel_address)
        if landed is not None:
            landed.set()
        for listener in self._listeners:
            task = asyncio.get_running_loop().create_task(listener(committed))
            task.add_done_callback(_log_task_failure)

    # --- responding ---------------------------------------------------------------------

    async def handle_update(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        """A counterparty proposes an update: validate, countersign, store, reply."""
        update = update_from_json(body.get("update"), "update.")
        self._check_addressed(sender, update)
        cached = self._cache.get(update.channel_address)
        if (cached is not None and cached.latest_update is not None
                and _retransmission(cached.latest_update, update)):
            # A retransmission of what we countersigned last: answer without the lock, which
            # an update of ours built on it may hold while it waits for the counterparty
            # (whose handler is waiting for this answer).
            return {"update": update_to_json(cached.latest_update)}
        previous = body.get("previous")
        async with self._admitted(update):
            return await self._respond(update, previous)

    def _check_addressed(self, sender: Address, update: Update) -> None:
        if update.initiator != sender:
            raise errors.InvalidUpdate("the update's initiator is not the message's sender")
        if update.responder != self.address:
            raise errors.InvalidUpdate("the update is not addressed to us")
        if update.channel_address in self.disputed:
            raise errors.ChannelDisputed()

    async def _respond(self, update: Update, previous: Any, *,
                       follow_up: bool = True) -> dict[str, Any]:
        """Validate, countersign and commit the counterparty's `update` (we hold the
        channel's lock); the reply, with our follow-up proposal if we have one."""
        voided: Update | None = None
        if update.channel_address in self.disputed:  # disputed while it waited
            raise errors.ChannelDisputed()
        stored = await self.channel(update.channel_address)
        if (stored is not None and previous is not None
                and update.nonce == stored.state.nonce + 2):  # one behind: catch up
            stored = await self._catch_up(stored, update_from_json(previous, "previous."))
        state = None if stored is None else stored.state
        transfers: ActiveTransfers = {} if stored is None else stored.transfers
        pending = None if stored is None else stored.pending_update
        if (pending is not None and pending.nonce == update.nonce
                and not _same_update(pending, update)):
            if not self.yields_on_collision:
                # we signed another update at this nonce and may not sign two
                raise ChannelBusy("an update of ours at this nonce is unsettled; retry")
            # The node proposing at this nonce proves it never took our pending update
            # (it signs one state per nonce too): ours is void, take theirs, and let
            # what ours meant to do be proposed again once theirs is in.
            await self.store.run(self.store.clear_pending, update.channel_address)
            assert stored is not None
            self._cache[update.channel_address] = replace(stored, pending_update=None)
            voided = pending
        if state is not None and update.nonce <= state.nonce:
            latest = stored.latest_update if stored is not None else None
            if latest is not None and _retransmission(latest, update):
                return {"update": update_to_json(latest)}  # a retransmission
            raise errors.StaleNonce(
                f"we are at nonce {state.nonce}; update {update.nonce} is stale"
            )
        await self._refuse_reused_transfer_id(update)
        rules = self.rules()
        applied = validate_update(state, transfers, update, rules)
        if update.type is UpdateType.DEPOSIT:
            await self._check_deposit(applied.state, update)
        if self.policy is not None:
            await self.policy(update, applied)
        routings = () if self.companion is None else self.companion(update, applied)
        party = applied.state.party(self.address)
        signed = update.with_signature(party, self.signer.sign(applied.digest))
        following = self._follow_up(update, applied) if follow_up else None
        committed = Committed(signed, applied, initiated_by_us=False, previous=state,
                              followed_by=following)
        committed = await self._commit(committed, routings)
        self._notify(committed)
        if voided is not None:
            self._voided(voided)
        reply = {"update": update_to_json(signed)}
        if following is not None:
            reply["next"] = update_to_json(following)
        return reply

    def _follow_up(self, update: Update, applied: Applied) -> Update | None:
        """Our signed proposal on top of `update`, if `follow_up` has one for it."""
        if self.follow_up is None:
            return None
        try:
            following = self.follow_up(update, applied)
            if following is None:
                return None
            signed, _applied = propose(applied.state, applied.transfers, following,
                                       self.signer, self.rules())
        except Exception as exc:  # proposed the usual way later, or never
            log.info("no follow-up on update %d in %s: %s", update.nonce,
                     update.channel_address, exc)
            return None
        return signed

    async def handle_accept(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        """The counterparty took the follow-up proposal we attached to our reply: commit
        its countersigned copy (only our own pending proposal, with a valid signature)."""
        update = update_from_json(body.get("update"), "update.")
        if update.initiator != self.address or update.responder != sender:
            raise errors.InvalidUpdate("an accept carries our own proposal to its sender")
        if update.channel_address in self.disputed:
            raise errors.ChannelDisputed()
        async with self.lock(update.channel_address):
            stored = await self.channel(update.channel_address)
            if stored is None:
                raise errors.ChannelNotSetUp(f"no channel {update.channel_address}")
            if stored.latest_update is not None and _same_update(stored.latest_update, update):
                return {}  # accepted before (a replay, or the re-sent proposal got it)
            pending = stored.pending_update
            if (pending is None or pending.nonce != stored.state.nonce + 1
                    or not _same_update(pending, update)):
                raise errors.InvalidUpdate("the accepted update is not our pending proposal")
            applied = apply_update(stored.state, stored.transfers, pending, self.rules())
            party = applied.state.party(sender)
            signature = update.alice_signature if party == "alice" else update.bob_signature
            if signature is None or not verify(applied.digest, signature, sender):
                raise errors.InvalidSignature("the counterparty's countersignature is invalid")
            committed = Committed(pending.with_signature(party, signature), applied,
                                  initiated_by_us=True, previous=stored.state)
            committed = await self._commit(committed)
        self._notify(committed)
        return {}

    @contextlib.asynccontextmanager
    async def _admitted(self, update: Update) -> AsyncIterator[None]:
        """Hold the channel's lock for the counterparty's `update`. The node (not yielding)
        refuses it while an update it signed is in flight, unless it builds on that one
        (the counterparty countersigned ours and goes on): that waits for our commit, a
        moment away, instead of retrying. A lock held by anything that signed nothing (a
        sweep or recovery looking at the channel, an update still being built) is waited
        for too: refusing would only make the counterparty retry. One waits at a time per
        channel, so waiting handlers cannot pile up. A proposal of ours at the update's
        nonce is a true collision: refused, ours wins."""
        channel = update.channel_address
        lock = self.lock(channel)
        if lock.locked() and not self.yields_on_collision:
            ours = self._proposing.get(channel)
            if (ours is not None and update.nonce != ours + 1) or channel in self._waiting:
                log.info("refused %s at nonce %d on %s: %s", update.type.value, update.nonce,
                         channel, f"ours at nonce {ours} is in flight"
                         if ours is not None and update.nonce != ours + 1
                         else "another update waits there")
                raise ChannelBusy("an update of ours is in flight on this channel; retry after it")
            self._waiting.add(channel)
            try:
                await lock.acquire(urgent=True)  # before our own next update there
            finally:
                self._waiting.discard(channel)
        else:
            await lock.acquire()
        try:
            yield
        finally:
            lock.release()

    async def _check_deposit(self, new_state: ChannelState, update: Update) -> None:
        details = update.details
        assert isinstance(details, DepositDetails)
        alice_total, bob_total = await self.deposits.total_deposits(new_state, details.asset_id)
        if details.total_deposits_alice > alice_total or details.total_deposits_bob > bob_total:
            raise errors.InvalidDeposit(
                f"the chain shows deposits of {alice_total}/{bob_total}, the update claims "
                f"{details.total_deposits_alice}/{details.total_deposits_bob}"
            )

    async def _catch_up(self, stored: StoredChannel, previous: Update) -> StoredChannel:
        """Apply the counterparty's latest double-signed update if we are one behind."""
        if previous.nonce != stored.state.nonce + 1:
            return stored
        if not previous.double_signed:
            raise errors.InvalidSignature("the previous update is not double-signed")
        applied = validate_update(stored.state, stored.transfers, previous, self.rules())
        committed = Committed(previous, applied,
                              initiated_by_us=previous.initiator == self.address,
                              previous=stored.state)
        committed = await self._commit(committed)
        self._notify(committed)
        refreshed = await self.channel(stored.state.channel_address)
        assert refreshed is not None
        return refreshed

    async def handle_sync(self, sender: Address, body: dict[str, Any]) -> dict[str, Any]:
        """Our latest double-signed update, state and active transfers for a participant."""
        channel_address = body.get("channelAddress")
        if not isinstance(channel_address, str):
            raise MalformedData("channelAddress: expected an address")
        stored = await self.channel(channel_address)
        if stored is None:
            raise errors.ChannelNotSetUp(f"no channel {channel_address}")
        if sender not in (stored.state.alice, stored.state.bob):
            raise errors.InvalidUpdate("only a participant may sync a channel")
        return {
            "state": state_to_json(stored.state),
            "update": None if stored.latest_update is None
            else update_to_json(stored.latest_update),
            "transfers": [transfer_to_json(t) for t in stored.transfers.values()],
        }

    # --- catching up and restoring --------------------------------------------------------

    async def sync_unlocked(self, channel_address: Address) -> None:
        """`sync` for a caller that already holds the channel's lock."""
        stored = await self.channel(channel_address)
        if stored is None:
            return
        reply = await self.transport.request(
            stored.state.counterparty(self.address), SYNC_METHOD,
            {"channelAddress": channel_address}, timeout=self.request_timeout,
        )
        if reply.get("update") is not None:
            theirs = update_from_json(reply["update"], "update.")
            if theirs.nonce == stored.state.nonce + 1:
                await self._catch_up(stored, theirs)

    async def sync(self, channel_address: Address) -> None:
        """Fetch the counterparty's latest update and apply it if it is one ahead of ours."""
        stored = await self.channel(channel_address)
        if stored is None:
            return
        counterparty = stored.state.counterparty(self.address)
        reply = await self.transport.request(
            counterparty, SYNC_METHOD, {"channelAddress": channel_address},
            timeout=self.request_timeout,
        )
        if reply.get("update") is None:
            return
        theirs = update_from_json(reply["update"], "update.")
        async with self.lock(channel_address):
            stored = await self.channel(channel_address)
            assert stored is not None
            if theirs.nonce == stored.state.nonce + 1:
                await self._catch_up(stored, theirs)
            elif theirs.nonce > stored.state.nonce + 1:
                raise OutOfSync(
                    f"counterparty is at nonce {theirs.nonce}, we are at {stored.state.nonce}:"
                    " restore the channel"
                )

    async def restore(self, counterparty: Address, channel_address: Address) -> ChannelState:
        """Replace our copy of a channel by the counterparty's, after verifying all of it.

        Checks both signatures on the state, the channel address derivation and that the
        active transfers hash to the signed merkle root. Nothing unverified is stored.
        """
        reply = await self.transport.request(
            counterparty, SYNC_METHOD, {"channelAddress": channel_address},
            timeout=self.request_timeout,
        )
        state = state_from_json(reply.get("state"), "state.")
        update = update_from_json(reply.get("update"), "update.")
        raw_transfers = reply.get("transfers")
        if not isinstance(raw_transfers, list):
            raise MalformedData("transfers: expected a list")
        transfers = {t.transfer_id: t for t in (transfer_from_json(x) for x in raw_transfers)}
        if state.channel_address != channel_address or self.address not in (state.alice,
                                                                             state.bob):
            raise errors.InvalidUpdate("the restored channel is not ours")
        if update.nonce != state.nonce or update.channel_address != channel_address:
            raise errors.InvalidUpdate("the latest update does not match the restored state")
        if update.alice_signature is None or update.bob_signature is None:
            raise errors.InvalidSignature("the restored state is not double-signed")
        verify_channel_state(state, update.alice_signature, update.bob_signature, transfers)
        async with self.lock(channel_address):
            self._cache.pop(channel_address, None)
            await self.store.run(
                self.store.restore_channel, state, update, list(transfers.values())
            )
        return state


def _same_update(a: Update, b: Update) -> bool:
    return (a.channel_address, a.initiator, a.type, a.nonce, a.details) == (
        b.channel_address, b.initiator, b.type, b.nonce, b.details
    )


def _retransmission(latest: Update, update: Update) -> bool:
    """Whether `update` is our double-signed `latest` as its initiator sent it: the same
    update with the same signature (signing is deterministic). Answering it with `latest`
    gives nothing away then: only who saw the proposal can send it."""
    theirs = [(mine, sig) for mine, sig in ((latest.alice_signature, update.alice_signature),
                                            (latest.bob_signature, update.bob_signature))
              if sig is not None]
    return _same_update(latest, update) and bool(theirs) and all(m == t for m, t in theirs)


def _is_refusal(exc: Exception) -> bool:
    """Whether the counterparty answered that it will not take the update as it is (a
    protocol error), as opposed to not now (busy, behind, failing)."""
    if not isinstance(exc, RemoteError) or exc.code in (
            ChannelBusy.code, OutOfSync.code, errors.StaleNonce.code):
        return False
    return errors.error_class(exc.code) is not None


def _reraise_remote(exc: Exception) -> None:
    """Turn a remote error reply into the matching local exception type, by code (the
    engine's own, or any of connext.protocol.errors), so callers can catch a refusal of
    the counterparty by its type: `TimeoutOutOfBounds`, `AmountBelowMinimum`, ..."""
    if not isinstance(exc, RemoteError):
        return
    for cls in (ChannelBusy, OutOfSync):
        if exc.code == cls.code:
            raise cls(exc.message) from exc
    typed = errors.error_class(exc.code)
    if typed is not None:
        raise typed(exc.message) from exc


def _log_task_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("listener failed", exc_info=task.exception())

