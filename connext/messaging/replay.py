"""The replay cache: which (sender, id) pairs this process has already accepted.

Pure (the caller passes the time in) and bounded in size and time: an entry lives until its
timestamp leaves the acceptance window, after which the timestamp check alone rejects it.
It must never forget an entry silently: when full, it evicts the oldest and from then on
refuses everything that old, so a replay is refused either way.

A party that must refuse replays across restarts gives its messaging a `SeenLog` (the
node's store): every admitted id is written there before its handler runs, and a new
process preloads the ids still inside the window.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Protocol

from .errors import ReplayedMessage, StaleTimestamp


class SeenLog(Protocol):
    """Durable memory of admitted message ids (ChannelStore implements it)."""

    def remember_message(self, key: bytes, timestamp_ms: int) -> None:
        """Record an admitted (sender ++ id) key with the message's timestamp."""

    def messages_seen_since(self, since_ms: int) -> list[tuple[bytes, int]]:
        """Keys and timestamps of messages timestamped at or after `since_ms`."""


class ReplayCache:
    def __init__(self, window_ms: int, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("the replay cache needs room for at least one entry")
        self.window_ms = window_ms
        self.max_entries = max_entries
        self._seen: set[bytes] = set()
        self._by_age: list[tuple[int, bytes]] = []  # heap of (timestamp, key)
        # Timestamps at or below this were (or may have been) evicted early.
        self._floor = -1

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, key: bytes, timestamp_ms: int, now_ms: int) -> None:
        """Record `key`, or raise ReplayedMessage if it was seen (StaleTimestamp if it is
        too old to tell because the cache overflowed)."""
        self._expire(now_ms)
        if key in self._seen:
            raise ReplayedMessage("this message id was already received")
        if timestamp_ms <= self._floor:
            raise StaleTimestamp("message too old for the replay cache; send a fresh one")
        if len(self._seen) >= self.max_entries:
            oldest, evicted = heapq.heappop(self._by_age)
            self._seen.discard(evicted)
            self._floor = max(self._floor, oldest)
            if timestamp_ms <= self._floor:
                raise StaleTimestamp("message too old for the replay cache; send a fresh one")
        self._seen.add(key)
        heapq.heappush(self._by_age, (timestamp_ms, key))

    def preload(self, seen: Iterable[tuple[bytes, int]], now_ms: int) -> None:
        """Take in what an earlier process admitted (from a SeenLog)."""
        for key, timestamp_ms in seen:
            if key not in self._seen and timestamp_ms >= now_ms - self.window_ms:
                self._seen.add(key)
                heapq.heappush(self._by_age, (timestamp_ms, key))

    def _expire(self, now_ms: int) -> None:
        horizon = now_ms - self.window_ms
        heap = self._by_age
        while heap and heap[0][0] < horizon:
            self._seen.discard(heapq.heappop(heap)[1])
