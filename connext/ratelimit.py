"""A per-key limit on how often something may happen within a sliding window.

Used by the node (setups and withdrawals per identity) and the wallet app (new wallets per
client address, faucet drips). In memory, per process, thread-safe; the number of keys
tracked is bounded (the least recently seen are forgotten first).
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
    def __init__(self, limit: int, window: float = 3600.0, max_keys: int = 100_000, *,
                 what: str = "requests") -> None:
        """At most `limit` events per key in any `window` seconds (0: no limit); `what`
        names the events in the refusal ("Too many {what}; try again in ...")."""
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.what = what
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> None:
        """Count one event for `key`; TooMany (nothing counted) when over the limit."""
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
                raise TooMany(f"Too many {self.what}; try again in {_minutes(retry)}.", retry)
            events.append(now)
            self._events[key] = events  # most recently used last
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)


def _minutes(seconds: int) -> str:
    minutes = (seconds + 59) // 60
    return "a minute" if minutes <= 1 else f"{minutes} minutes"
