"""Alembic migrations create exactly the tables the models describe (the core's and every installed plugin's
``Plugin.tables``), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData

from hub.bootstrap import load_plugins
from hub.store import MessageStore
from hub.store.models import Base

pytestmark = pytest.mark.integration


def every_table() -> MetaData:
    """The core's tables and those of every installed plugin, in one metadata."""
    combined = MetaData()
    for metadata in [Base.metadata, *(plugin.tables for plugin in load_plugins() if plugin.tables is not None)]:
        for table in metadata.tables.values():
            table.to_metadata(combined)
    return combined


async def test_migrations_match_the_models(database_url: str) -> None:
    expected = every_table()
    assert {"payments", "payment_callbacks", "shipments", "shipment_events", "login_sessions"} <= set(expected.tables)
    store = MessageStore.open(database_url)
    try:
        await store.migrate()
        await store.migrate()  # a second start finds nothing to do

        def differences(connection: Connection) -> list[object]:
            context = MigrationContext.configure(connection)
            return list(compare_metadata(context, expected))

        async with store._engine.connect() as connection:
            diff = await connection.run_sync(differences)
        assert diff == []
    finally:
        await store.aclose()
