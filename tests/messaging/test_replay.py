"""The replay cache refuses a (sender, id) twice, forgets entries only once their
timestamp has left the window, and stays bounded without opening a replay hole."""

from __future__ import annotations

import pytest

from connext.messaging.errors import ReplayedMessage, StaleTimestamp
from connext.messaging.replay import ReplayCache

WINDOW = 60_000


def test_the_same_key_is_refused_while_its_timestamp_is_in_the_window() -> None:
    cache = ReplayCache(WINDOW)
    cache.admit(b"a", 1_000_000, now_ms=1_000_000)
    with pytest.raises(ReplayedMessage):
        cache.admit(b"a", 1_000_000, now_ms=1_000_000 + WINDOW)
    cache.admit(b"b", 1_000_000, now_ms=1_000_000)


def test_entries_expire_once_their_timestamp_leaves_the_window() -> None:
    cache = ReplayCache(WINDOW)
    cache.admit(b"a", 1_000_000, now_ms=1_000_000)
    cache.admit(b"future", 1_000_000 + WINDOW, now_ms=1_000_000)
    cache.admit(b"c", 1_000_000 + WINDOW + 1, now_ms=1_000_000 + WINDOW + 1)
    assert len(cache) == 2  # "a" expired; a future-dated entry lives until it is old
    with pytest.raises(ReplayedMessage):
        cache.admit(b"future", 1_000_000 + WINDOW, now_ms=1_000_000 + 2 * WINDOW)


def test_a_full_cache_evicts_the_oldest_and_then_refuses_anything_that_old() -> None:
    cache = ReplayCache(WINDOW, max_entries=2)
    now = 10_000_000
    cache.admit(b"old", now - 10, now_ms=now)
    cache.admit(b"mid", now - 5, now_ms=now)
    cache.admit(b"new", now, now_ms=now)  # evicts "old"
    assert len(cache) == 2
    with pytest.raises(StaleTimestamp):
        cache.admit(b"old", now - 10, now_ms=now)  # a replay of the evicted one
    with pytest.raises(StaleTimestamp):
        cache.admit(b"other", now - 20, now_ms=now)
    with pytest.raises(ReplayedMessage):
        cache.admit(b"mid", now - 5, now_ms=now)
