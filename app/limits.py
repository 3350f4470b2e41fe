"""A per-client limit on how often something may happen (new wallets, on a public server).

A sliding window per key (the client's IP address as the server sees it: put the app
behind a proxy that sets it, the app does not trust forwarded headers). In memory, per
process; the number of keys tracked is bounded.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque


class TooMany(Exception):
    """Over the limit; `retry_after` is the seconds until one more is allowed."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class SlidingWindow:
    def __init__(self, limit: int, window: float = 3600.0, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> None:
        """Count one event for `key`; TooMany (nothing counted) when over the limit.
        A limit of 0 means no limit."""
        if self.limit <= 0:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.pop(key, None) or deque()
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                self._events[key] = events
                retry = max(1, int(events[0] + self.window - now) + 1)
                raise TooMany("Too many new wallets from your network; try again in "
                              f"{_minutes(retry)}.", retry)
            events.append(now)
            self._events[key] = events  # most recently used last
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)


def _minutes(seconds: int) -> str:
    minutes = (seconds + 59) // 60
    return "a minute" if minutes <= 1 else f"{minutes} minutes"
