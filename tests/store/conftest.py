"""Every store test runs twice: on a SQLite file and on a throwaway PostgreSQL 15 cluster.

The cluster is started once per session (only if a PostgreSQL case runs) and each test
gets a fresh schema (an empty database to the store); without the server binaries the
PostgreSQL cases are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connext.store import ChannelStore
from connext.store.testing import PostgresCluster

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database on the parametrized backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_schema()  # to the store an empty database, and much faster


@pytest.fixture
def store(database_url: str) -> Iterator[ChannelStore]:
    opened = ChannelStore.open(database_url)
    try:
        yield opened
    finally:
        opened.close()
