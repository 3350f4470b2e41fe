"""The schema comes from Alembic migrations run by `ChannelStore.open`: a fresh database
gets every table, reopening is a no-op, and the migrated schema is exactly `schema.py`."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from connext.store import ChannelStore, SchemaError
from connext.store.schema import metadata
from connext.store.store import _normalize_url
from connext.store.testing import PostgresCluster

from .builders import funded

TABLES = {
    "channels", "pending_updates", "channel_updates", "transfers", "routings",
    "chain_transactions", "transaction_sends", "watcher_blocks", "events", "public_keys",
    "registered_secrets", "seen_messages", "stream_vouchers", "swap_quotes",
    "collateral_profiles",
}


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", "connext.store:migrations")
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_a_fresh_database_gets_every_table_at_head(database_url: str) -> None:
    store = ChannelStore.open(database_url)
    try:
        assert store.schema_revision() == _head()
    finally:
        store.close()
    engine = create_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    finally:
        engine.dispose()


def test_opening_twice_is_idempotent_and_keeps_the_data(database_url: str) -> None:
    store = ChannelStore.open(database_url)
    channel = funded(store)
    store.close()
    again = ChannelStore.open(database_url)
    try:
        assert again.schema_revision() == _head()
        stored = again.get_channel(channel.address)
        assert stored is not None and stored.state == channel.state
    finally:
        again.close()


def test_concurrent_opens_migrate_once(database_url: str) -> None:
    stores: list[ChannelStore] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_store() -> None:
        barrier.wait()
        try:
            stores.append(ChannelStore.open(database_url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
    assert len(stores) == 4


def test_migrated_schema_matches_the_metadata(database_url: str) -> None:
    ChannelStore.open(database_url).close()
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_a_database_from_a_newer_version_is_refused(database_url: str) -> None:
    ChannelStore.open(database_url).close()
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'from_the_future'")
    finally:
        engine.dispose()
    with pytest.raises(SchemaError, match="newer version"):
        ChannelStore.open(database_url)


def test_unsupported_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        ChannelStore.open("mysql://localhost/x")


def test_an_in_memory_database_works_for_single_threaded_use() -> None:
    store = ChannelStore.open("sqlite://")
    try:
        channel = funded(store)
        stored = store.get_channel(channel.address)
        assert stored is not None and stored.state == channel.state
    finally:
        store.close()


def test_plain_postgresql_urls_use_psycopg() -> None:
    assert _normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert _normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert _normalize_url("sqlite:///x.db").drivername == "sqlite"


def test_sqlite_files_are_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "node.sqlite"  # missing directories are created
    store = ChannelStore.open(f"sqlite:///{path}")
    try:
        with store._read() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        store.close()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_a_new_postgresql_database_is_migrated(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.create_database()
    store = ChannelStore.open(url)
    try:
        assert store.schema_revision() == _head()
        assert store.dialect == "postgresql"
    finally:
        store.close()
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    finally:
        engine.dispose()
