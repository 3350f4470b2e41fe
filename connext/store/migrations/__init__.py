"""Alembic migrations of the store's schema, shipped inside the package.

`ChannelStore.open` runs them to head on every start; there is no alembic.ini. Migrations
only ever move forward and never touch data outside the tables they name.
"""
