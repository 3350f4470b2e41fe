"""Alembic environment: runs migrations on the connection `ChannelStore.open` hands over.

It never opens a connection of its own and never reads an alembic.ini: the caller sets
`config.attributes["connection"]` inside the transaction that serializes migrators.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from connext.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run the store's migrations through ChannelStore.open(url)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
