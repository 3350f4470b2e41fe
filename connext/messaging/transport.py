"""`Messaging`: signed request/reply and notifications over NATS; the one place that talks NATS.

A party serves `connext.<its address>.<sender>.<method>` (lowercase addresses; the node in
a queue group, so its replicas share the work) and sends to the counterparty's subjects
with its own address as the sender. It logs in with its Ethereum key (`natsauth`): the
server then lets it publish only as itself and read only its own subjects. Inbound messages pass
`InboundChecks` before a handler runs; every failure is answered with a signed typed error
reply. Replies are checked by the requester. A payload-signed method (a channel update:
its body is a signed state, its reply the countersigned state) goes without envelope
signatures: the receiver authenticates the payload, and error replies stay signed. It
must never let a bad message or a failing handler stop the subscription, and never put a
traceback or internal detail on the wire.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ..counters import COUNTS
from ..protocol.errors import ProtocolError
from ..protocol.signing import Signer
from ..protocol.types import Address
from . import envelope as env
from .errors import (
    InternalError,
    InvalidReply,
    MessageTooLarge,
    MessagingError,
    MessagingTimeout,
    NoResponders,
    NotConnected,
    RemoteError,
)
from .inbound import InboundChecks, replay_key, reply_context
from .natsauth import login_options
from .replay import SeenLog

log = logging.getLogger(__name__)

Handler = Callable[[env.Envelope], Awaitable[dict[str, Any]]]

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
DEFAULT_TIME_WINDOW_S = 60.0
DEFAULT_MAX_CONCURRENT_HANDLERS = 256
CONNECT_ATTEMPTS = 3  # about a second apart
SUBJECT_ROOT = "connext"
_NO_RESPONDERS_STATUS = "503"
_INTERNAL_ERROR_MESSAGE = "the request could not be processed"


def subject(to: Address, sender: Address, method: str) -> str:
    """The NATS subject on which `to` serves `method` to `sender`."""
    return f"{SUBJECT_ROOT}.{to.lower()}.{sender.lower()}.{method}"


ResultCheck = Callable[[dict[str, Any]], None]
"""Raises unless a reply's result is authentic by its own signatures (a payload-signed
request's reply carries no envelope signature)."""


@dataclass
class _PendingRequest:
    request: env.Envelope
    request_hash: bytes
    reply: asyncio.Future[dict[str, Any] | tuple[str, str]]
    check_result: ResultCheck | None = None
    rejected: list[str] = field(default_factory=list)


class Messaging:
    """Signed messaging for one party (one signer). Register handlers, `serve()`, and
    `request()`/`publish()` to other parties' addresses."""

    def __init__(
        self,
        signer: Signer,
        nats_url: str,
        *,
        max_body_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        time_window_s: float = DEFAULT_TIME_WINDOW_S,
        clock: Callable[[], float] = time.time,
        chain_id: int = env.DEFAULT_CHAIN_ID,
        max_concurrent_handlers: int = DEFAULT_MAX_CONCURRENT_HANDLERS,
        replay_cache_size: int = 100_000,
        seen_log: SeenLog | None = None,
    ) -> None:
        """`max_body_bytes` bounds a whole encoded envelope, in and out (both parties should
        use the same value); `time_window_s` is the accepted clock difference, either way;
        `chain_id` goes into the signing domain (both parties must agree; 0 by default);
        `seen_log`: where admitted message ids are kept across restarts (replays stay
        refused after one); without it they are kept in memory only."""
        self.signer = signer
        self.address: Address = signer.address
        self.nats_url = nats_url
        self.max_body_bytes = max_body_bytes
        self.chain_id = chain_id
        self.clock = clock
        self._checks = InboundChecks(
            self.address,
            max_bytes=max_body_bytes,
            window_ms=int(time_window_s * 1000),
            chain_id=chain_id,
            replay_cache_size=replay_cache_size,
        )
        self._seen_log = seen_log
        self._replay_safe: set[str] = set()
        self._payload_signed: set[str] = set()
        self._handlers: dict[str, Handler] = {}
        self._subject_prefix = f"{SUBJECT_ROOT}.{self.address.lower()}."
        self._max_concurrent = max_concurrent_handlers
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._nc: NatsClient | None = None
        self._closing = False
        self._serving: Subscription | None = None
        self._serving_queue: str | None = None  # while serving: the queue group ("" none)
        self._reviving: asyncio.Task[None] | None = None
        self._refused: list[str] = []  # the server's last permission violations
        self._inbox_prefix = ""
        self._tokens = itertools.count()
        self._pending: dict[str, _PendingRequest] = {}

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def connect(self) -> None:
        if self._nc is not None:
            return
        nc = await self._open(CONNECT_ATTEMPTS)
        if self._seen_log is not None:  # what an earlier process of ours admitted
            now = self._now_ms()
            seen = await asyncio.to_thread(self._seen_log.messages_seen_since,
                                           now - self._checks.window_ms)
            self._checks.replays.preload(seen, now)
        self._slots = asyncio.Semaphore(self._max_concurrent)
        await self._listen(nc)

    async def _open(self, attempts: int) -> NatsClient:
        try:
            nc = await nats.connect(
                self.nats_url,
                name=f"connext-{self.address}",
                max_reconnect_attempts=attempts,
                reconnect_time_wait=1,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
                closed_cb=self._on_closed,
                **login_options(self.signer),
            )
        except (OSError, nats.errors.Error) as exc:
            raise NotConnected(f"cannot reach NATS at {self.nats_url}: {exc}") from exc
        # Give up quickly on a wrong URL at startup, but once connected never stop trying to
        # reconnect (nats-py reads this option on every attempt).
        nc.options["max_reconnect_attempts"] = -1
        return nc

    async def _listen(self, nc: NatsClient) -> None:
        if not self._inbox_prefix:  # kept across logins: a reply sent after one still lands
            self._inbox_prefix = nc.new_inbox()
        await nc.subscribe(self._inbox_prefix + ".*", cb=self._on_reply)
        if self._serving_queue is not None:
            self._serving = await nc.subscribe(
                self._subject_prefix + ">", queue=self._serving_queue, cb=self._on_request)
        await flush_subscriptions(nc)
        self._nc = nc

    async def _on_closed(self) -> None:
        """nats-py gives up on a connection the server closed with an error, e.g. when our
        login expired: log in again on a new one, with the same subscriptions and reply
        inbox. A request waiting for a reply gets it if the reply is sent once we are
        back; one sent in between is lost and the request times out."""
        if self._closing or self._nc is None:
            return  # our own close()
        log.info("%s: the NATS connection was closed (%s); logging in again", self.address,
                 self._nc.last_error)
        self._nc = None
        self._reviving = asyncio.get_running_loop().create_task(self._revive())

    async def _revive(self) -> None:
        pause = 0.05
        while True:
            try:
                await self._listen(await self._open(0))
                log.info("%s logged in to NATS again", self.address)
                self._reviving = None
                return
            except (NotConnected, nats.errors.Error, OSError) as exc:
                log.warning("%s: NATS login failed (%s); retrying", self.address, exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    async def close(self, *, grace_s: float = 5.0) -> None:
        """Stop serving, give running handlers `grace_s` to finish (their replies still go
        out), fail pending requests with NotConnected, and disconnect."""
        reviving, self._reviving = self._reviving, None
        if reviving is not None:
            reviving.cancel()
            await asyncio.gather(reviving, return_exceptions=True)
        nc = self._nc
        if nc is None or self._closing:
            return
        self._closing = True
        try:
            if self._serving is not None:
                serving, self._serving = self._serving, None
                try:
                    await serving.unsubscribe()
                except nats.errors.Error:
                    log.debug("unsubscribe on close failed", exc_info=True)
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for pending in self._pending.values():
                if not pending.reply.done():
                    pending.reply.set_exception(NotConnected("messaging was closed"))
            self._nc = None
            await nc.close()
        finally:
            self._closing = False

    def _client(self) -> NatsClient:
        if self._nc is None:
            raise NotConnected("messaging is not connected: call connect() first")
        return self._nc

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _seal(self, to: Address, method: str, body: dict[str, Any], *,
              signed: bool = True) -> env.Envelope:
        if not signed:
            return env.unsigned(self.address, to, method, body,
                                message_id=os.urandom(env.ID_BYTES), timestamp=self._now_ms())
        return env.seal(
            self.signer, to, method, body,
            message_id=os.urandom(env.ID_BYTES), timestamp=self._now_ms(),
            chain_id=self.chain_id,
        )

    def _encode(self, envelope: env.Envelope) -> bytes:
        wire = env.encode(envelope)
        if len(wire) > self.max_body_bytes:
            raise MessageTooLarge(
                f"the {envelope.method} message is {len(wire)} bytes; "
                f"the limit is {self.max_body_bytes}"
            )
        return wire

    # --- serving --------------------------------------------------------------------------

    def handle(self, method: str, handler: Handler, *, replay_safe: bool = False,
               payload_signed: bool = False) -> None:
        """Serve `method` (dotted lowercase words) with `handler`, which gets the verified
        envelope and returns the reply body (ignored for notifications). `replay_safe`:
        a replay of this method is harmless by construction (a channel update carries its
        nonce: a replay is answered with the stored copy or refused as stale), so its ids
        are kept in memory only, not written to the seen log. `payload_signed` (replay-safe
        too): requests may come without an envelope signature, so `envelope.sender` is
        only claimed and the handler must authenticate the body (a channel update: its
        initiator is the sender and signed it); a result goes back unsigned as well, its
        body authentic by its own signatures (the requester checks them)."""
        if not env.is_valid_method(method):
            raise ValueError(f"invalid method name {method!r}: use dotted lowercase words")
        if method in self._handlers:
            raise ValueError(f"a handler for {method!r} is already registered")
        self._handlers[method] = handler
        if replay_safe or payload_signed:
            self._replay_safe.add(method)
        if payload_signed:
            self._payload_signed.add(method)

    async def serve(self, *, queue: str | None = None) -> None:
        """Subscribe to this party's subjects. With `queue`, every process serving the same
        address in that queue group shares the requests (each is handled once)."""
        if self._serving is not None:
            raise RuntimeError("already serving")
        nc = self._client()
        self._serving_queue = queue or ""
        self._serving = await nc.subscribe(
            self._subject_prefix + ">", queue=self._serving_queue, cb=self._on_request
        )
        await flush_subscriptions(nc)  # before we say we serve

    async def stop_serving(self) -> None:
        """Unsubscribe from this party's subjects (requesters get no responders) while
        staying connected for our own requests; `serve()` again to resume."""
        serving, self._serving = self._serving, None
        self._serving_queue = None
        if serving is not None:
            await serving.unsubscribe()
            await flush_subscriptions(self._client())

    async def _on_request(self, msg: Msg) -> None:
        # Runs in the subscription's reader task: hand each message to its own task so a
        # slow handler never holds up the others; the semaphore bounds how many run.
        COUNTS.messages_received += 1
        assert self._slots is not None
        await self._slots.acquire()
        task = asyncio.get_running_loop().create_task(self._process(msg))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        assert self._slots is not None
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("message processing failed", exc_info=task.exception())

    async def _process(self, msg: Msg) -> None:
        answers = env.request_hash(msg.data) if msg.reply else b""
        try:
            request = self._checks.admit(
                msg.data, msg.subject[len(self._subject_prefix):], self._now_ms(), self._handlers,
                self._payload_signed,
            )
        except MessagingError as exc:
            log.info("rejected a message on %s: %s (%s)", msg.subject, exc.code, exc.message)
            if msg.reply:
                to, method = reply_context(msg.data, self.max_body_bytes)
                await self._reply(msg.reply, to, env.reply_method(method), answers,
                                  env.error_body(answers, exc.code, exc.message))
            return
        signed_reply = True
        try:
            if self._seen_log is not None and request.method not in self._replay_safe:
                # durable before anything acts on the message
                await asyncio.to_thread(self._seen_log.remember_message, replay_key(request),
                                        request.timestamp)
            result = await self._handlers[request.method](request)
            if not isinstance(result, dict):
                raise TypeError(f"handler returned {type(result).__name__}, not a dict")
            body = env.result_body(answers, result)
            signed_reply = request.method not in self._payload_signed
        except ProtocolError as exc:
            log.info("%s from %s failed: %s", request.method, request.sender, exc.code)
            body = env.error_body(answers, exc.code, exc.message)
        except Exception:
            log.exception("handler for %s from %s failed", request.method, request.sender)
            body = env.error_body(answers, InternalError.code, _INTERNAL_ERROR_MESSAGE)
        if msg.reply:
            await self._reply(msg.reply, request.sender, env.reply_method(request.method),
                              answers, body, signed=signed_reply)

    async def _reply(self, inbox: str, to: Address, method: str, answers: bytes,
                     body: dict[str, Any], *, signed: bool = True) -> None:
        try:
            wire = self._encode(self._seal(to, method, body, signed=signed))
        except MessageTooLarge as exc:
            wire = self._encode(self._seal(to, method, env.error_body(
                answers, exc.code, "the reply is larger than the message size limit")))
        except Exception:  # a handler returned something that is not JSON
            log.exception("cannot encode the reply %s to %s", method, to)
            wire = self._encode(self._seal(to, method, env.error_body(
                answers, InternalError.code, _INTERNAL_ERROR_MESSAGE)))
        try:
            await self._publish(self._client(), inbox, wire)
        except NotConnected as exc:
            log.info("could not send %s to %s: %s", method, to, exc.message)

    # --- requesting -----------------------------------------------------------------------

    async def request(self, to: Address, method: str, body: dict[str, Any], *,
                      timeout: float = 10.0,
                      check_result: ResultCheck | None = None) -> dict[str, Any]:
        """Send a signed request and return the verified reply's result.

        With `check_result`, the request is payload-signed (`to` serves `method` so): it
        goes without an envelope signature, and a result is taken once `check_result`
        passes on it (an unsigned result that fails it is dropped like a forged reply).
        Raises RemoteError (with the remote code) on an error reply, NoResponders if nobody
        serves `to`, MessagingTimeout if no reply came, InvalidReply if only replies that
        failed verification came, MessageTooLarge if the request is over the size limit.
        """
        nc = self._client()
        request = self._seal(to, method, body, signed=check_result is None)
        wire = self._encode(request)
        token = str(next(self._tokens))
        pending = _PendingRequest(request, env.request_hash(wire),
                                  asyncio.get_running_loop().create_future(), check_result)
        self._pending[token] = pending
        try:
            await self._publish(nc, subject(request.to, self.address, method), wire,
                                reply=f"{self._inbox_prefix}.{token}")
            async with asyncio.timeout(timeout):
                outcome = await pending.reply
        except TimeoutError:
            if pending.rejected:
                raise InvalidReply(
                    f"no valid reply from {request.to} to {method}; rejected: "
                    + "; ".join(pending.rejected)
                ) from None
            raise MessagingTimeout(f"{request.to} did not answer {method} in {timeout}s") from None
        finally:
            del self._pending[token]
        if isinstance(outcome, tuple):
            raise RemoteError(*outcome)
        return outcome

    async def publish(self, to: Address, method: str, body: dict[str, Any], *,
                      signed: bool = True) -> None:
        """Send a signed notification; no reply comes back, errors are only logged there.
        `signed=False` only for a method `to` serves payload-signed (its body authentic
        by its own signatures)."""
        envelope = self._seal(to, method, body, signed=signed)
        await self._publish(self._client(), subject(envelope.to, self.address, method),
                            self._encode(envelope))

    @staticmethod
    async def _publish(nc: NatsClient, to_subject: str, wire: bytes, reply: str = "") -> None:
        COUNTS.messages_sent += 1
        try:
            await nc.publish(to_subject, wire, reply=reply)
        except nats.errors.Error as exc:  # closed, draining, outbound buffer full
            raise NotConnected(f"cannot send on NATS: {type(exc).__name__}") from exc

    async def _on_reply(self, msg: Msg) -> None:
        COUNTS.messages_received += 1
        pending = self._pending.get(msg.subject[len(self._inbox_prefix) + 1:])
        if pending is None or pending.reply.done():
            return
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS_STATUS:
            pending.reply.set_exception(
                NoResponders(f"nobody serves {pending.request.method} for {pending.request.to}")
            )
            return
        try:
            outcome = self._verify_reply(msg.data, pending)
        except MessagingError as exc:
            # Keep waiting: a forged reply must not shadow the genuine one.
            log.warning("dropped a reply to %s: %s", pending.request.method, exc.message)
            pending.rejected.append(exc.message)
            return
        except ProtocolError as exc:  # a signed result that fails its check: the answer
            pending.reply.set_exception(exc)
            return
        pending.reply.set_result(outcome)

    def _verify_reply(
        self, raw: bytes, pending: _PendingRequest
    ) -> dict[str, Any] | tuple[str, str]:
        request = pending.request
        reply = env.decode(raw, self.max_body_bytes)
        if reply.sender != request.to:
            raise InvalidReply(f"the reply is from {reply.sender}, not {request.to}")
        if reply.to != self.address:
            raise InvalidReply(f"the reply is addressed to {reply.to}, not to us")
        if reply.method != env.reply_method(request.method):
            raise InvalidReply(f"the reply's method is {reply.method!r}")
        if not (reply.unsigned and pending.check_result is not None):
            env.verify_sender(reply, self.chain_id)
            outcome = env.reply_outcome(reply.body, pending.request_hash)
            if pending.check_result is not None and not isinstance(outcome, tuple):
                pending.check_result(outcome)  # signed by the responder: its failure counts
            return outcome
        outcome = env.reply_outcome(reply.body, pending.request_hash)
        if isinstance(outcome, tuple):
            raise InvalidReply("an error reply must be signed")
        try:
            pending.check_result(outcome)
        except ProtocolError as exc:
            raise InvalidReply(f"the unsigned result is not authentic: {exc.message}") from None
        return outcome

    async def may_publish(self, to_subject: str) -> bool:
        """Whether the server lets us publish on `to_subject` (an empty message goes there:
        use a subject nobody serves). The server answers a refused publish before the
        PONG of the flush that follows it."""
        nc = self._client()
        self._refused.clear()
        await nc.publish(to_subject, b"")
        await flush_subscriptions(nc)
        return not any(to_subject in refusal for refusal in self._refused)

    async def _on_error(self, exc: Exception) -> None:
        text = str(exc)
        if "permissions violation" in text.lower():
            self._refused = [*self._refused[-9:], text]
        await _log_nats_error(exc)

    # --- connection events ----------------------------------------------------------------

    async def _on_disconnected(self) -> None:
        if self._nc is not None:
            log.warning("%s lost its NATS connection; reconnecting", self.address)

    async def _on_reconnected(self) -> None:
        log.info("%s reconnected to NATS", self.address)


async def flush_subscriptions(nc: NatsClient) -> None:
    """Return once the server has every subscription made so far on `nc`.

    One `flush()` is not enough with nats-py 2.16: it writes its PING straight to the
    socket while a SUB waits in the client's buffer for the flusher task, so the PONG can
    come back before the server saw the SUB (a request sent right then gets "no
    responders"). The first round trip lets the flusher write the buffer; the second PING
    goes out after it, and the server answers in order.
    """
    await nc.flush()
    await nc.flush()


async def _log_nats_error(exc: Exception) -> None:
    log.warning("NATS: %s", exc)


__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "DEFAULT_TIME_WINDOW_S", "Handler", "Messaging", "subject"]
