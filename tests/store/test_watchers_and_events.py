"""Watcher progress survives a restart; the activity log pages forwards and backwards."""

from __future__ import annotations

from connext.store import ChannelStore

CHANNEL_A = "0x" + "a1" * 20
CHANNEL_B = "0x" + "b2" * 20


def test_watcher_resumes_from_its_last_block_after_reopening(database_url: str) -> None:
    store = ChannelStore.open(database_url)
    assert store.get_last_block("deposits") is None
    store.set_last_block("deposits", 100)
    store.set_last_block("deposits", 105)
    store.set_last_block("disputes", 7)
    store.close()

    reopened = ChannelStore.open(database_url)
    try:
        assert reopened.get_last_block("deposits") == 105
        assert reopened.get_last_block("disputes") == 7
        assert reopened.get_last_block("withdrawals") is None
    finally:
        reopened.close()


def test_events_page_by_id_per_channel(store: ChannelStore) -> None:
    ids = []
    for n in range(7):
        channel = CHANNEL_A if n % 2 == 0 else CHANNEL_B
        ids.append(store.append_event(channel, "transfer.received",
                                      {"n": n, "amount": str(10**30 + n), "nested": {"ok": True}}))
    node_wide = store.append_event(None, "node.started", {})
    assert ids == sorted(ids) and len(set(ids)) == 7 and node_wide > ids[-1]

    everything = store.events()
    assert [e.id for e in everything] == [*ids, node_wide]
    first = store.events(CHANNEL_A, limit=2)
    assert [e.payload["n"] for e in first] == [0, 2]
    rest = store.events(CHANNEL_A, after_id=first[-1].id, limit=2)
    assert [e.payload["n"] for e in rest] == [4, 6]
    assert store.events(CHANNEL_A, after_id=rest[-1].id) == []
    assert first[0].payload == {"n": 0, "amount": str(10**30), "nested": {"ok": True}}
    assert first[0].kind == "transfer.received" and first[0].channel_address == CHANNEL_A
    assert first[0].created_at.tzinfo is not None

    newest = store.events(CHANNEL_B, limit=2, newest_first=True)
    assert [e.payload["n"] for e in newest] == [5, 3]
    older = store.events(CHANNEL_B, before_id=newest[-1].id, newest_first=True)
    assert [e.payload["n"] for e in older] == [1]
