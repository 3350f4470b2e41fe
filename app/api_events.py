"""Live wallet events for the JSON API, as server-sent events.

One `EventHub` per app is the only listener the API adds to `WalletService.listeners`; it
hands each event to the queues of the streams open for that wallet's address (and no
other). Each stream has its own bounded queue; a stream that falls too far behind is told
so and closed, so a slow reader can never make the wallet loop wait or grow memory.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any

MAX_QUEUE = 1000
MAX_STREAMS_PER_WALLET = 8
MAX_STREAMS = 256
"""Each open stream holds one server thread: a bound for all wallets together."""
HEARTBEAT_SECONDS = 15.0


class Subscription:
    def __init__(self, address: str) -> None:
        self.address = address
        self.queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(MAX_QUEUE)
        self.overflowed = threading.Event()

    def put(self, event: str, data: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait((event, data))
        except queue.Full:
            self.overflowed.set()


class TooManyStreams(Exception):
    pass


class EventHub:
    """Fans wallet events out to the streams of that wallet (thread-safe)."""

    def __init__(self, max_per_wallet: int = MAX_STREAMS_PER_WALLET,
                 max_total: int = MAX_STREAMS) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, list[Subscription]] = {}
        self.max_per_wallet = max_per_wallet
        self.max_total = max_total

    def subscribe(self, address: str) -> Subscription:
        with self._lock:
            total = sum(len(s) for s in self._streams.values())
            streams = self._streams.setdefault(address, [])
            if len(streams) >= self.max_per_wallet or total >= self.max_total:
                raise TooManyStreams(address)
            subscription = Subscription(address)
            streams.append(subscription)
            return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            streams = self._streams.get(subscription.address, [])
            if subscription in streams:
                streams.remove(subscription)
            if not streams:
                self._streams.pop(subscription.address, None)

    def count(self, address: str | None = None) -> int:
        with self._lock:
            if address is not None:
                return len(self._streams.get(address, []))
            return sum(len(s) for s in self._streams.values())

    def publish(self, address: str, event: str, data: dict[str, Any]) -> None:
        """A `WalletService` listener: called on the wallet loop, must never block."""
        with self._lock:
            streams = list(self._streams.get(address, []))
        payload = {"address": address, "event": event,
                   **{k: v for k, v in data.items() if k != "event"}}
        for subscription in streams:
            subscription.put(event, payload)


def sse(event: str, data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"), default=str)
    return f"event: {event}\ndata: {text}\n\n"


class EventStream:
    """The text of one event stream. It ends (and unsubscribes) when the reader goes away;
    `close()` (which the WSGI server calls) unsubscribes even if it never started."""

    def __init__(self, hub: EventHub, subscription: Subscription,
                 heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.hub = hub
        self.subscription = subscription
        self.heartbeat = heartbeat
        self._lines = self._generate()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._lines)

    def close(self) -> None:
        self._lines.close()
        self.hub.unsubscribe(self.subscription)

    def _generate(self) -> Generator[str, None, None]:
        subscription = self.subscription
        try:
            yield "retry: 3000\n" + sse("ready", {"address": subscription.address})
            while True:
                if subscription.overflowed.is_set():
                    yield sse("overflow", {"message": "Events arrived faster than this "
                                                      "stream read them; reconnect and catch "
                                                      "up with the history route."})
                    return
                try:
                    event, data = subscription.queue.get(timeout=self.heartbeat)
                except queue.Empty:
                    yield ": heartbeat\n\n"
                    continue
                yield sse(event, data)
        finally:
            self.hub.unsubscribe(subscription)
