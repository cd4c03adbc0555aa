"""Alembic migrations create exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from hub.store import MessageStore
from hub.store.models import Base

pytestmark = pytest.mark.integration


async def test_migrations_match_the_models(database_url: str) -> None:
    store = MessageStore.open(database_url)
    try:
        await store.migrate()
        await store.migrate()  # a second start finds nothing to do

        def differences(connection: Connection) -> list[object]:
            context = MigrationContext.configure(connection)
            return list(compare_metadata(context, Base.metadata))

        async with store._engine.connect() as connection:
            diff = await connection.run_sync(differences)
        assert diff == []
    finally:
        await store.aclose()
