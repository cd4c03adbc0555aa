"""The grouped writes' plain-SQL path (SQLite) writes what SQLAlchemy would, column defaults included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    false,
    insert,
    select,
    update,
)

from hub.store._plain_sql import execute_many

_METADATA = MetaData()
_ROWS = Table(
    "rows",
    _METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("flag", Boolean, nullable=False, default=False, server_default=false()),
    Column("count", Integer, default=7),
    Column("at", DateTime, default=datetime.now),
    Column("changes", Integer, onupdate=1),
)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    _METADATA.create_all(engine)
    yield engine
    engine.dispose()


def test_a_column_left_out_of_the_rows_gets_its_scalar_default_not_null(engine: Engine) -> None:
    """SQLAlchemy applies a column's ``default`` when it executes a statement itself; the plain path
    does too (it wrote NULL, and a NOT NULL column refused the whole batch)."""
    at = datetime(2026, 12, 4, 8, 0)
    with engine.begin() as connection:
        execute_many(connection, insert(_ROWS), [{"name": "a", "at": at}, {"name": "b", "at": at}], json_text=str)
        written = connection.execute(select(_ROWS.c.name, _ROWS.c.flag, _ROWS.c.count, _ROWS.c.at)).all()
    assert [tuple(r) for r in written] == [("a", False, 7, at), ("b", False, 7, at)]


def test_an_update_applies_scalar_onupdate_and_keeps_the_statements_own_none(engine: Engine) -> None:
    at = datetime(2026, 12, 4, 8, 0)
    with engine.begin() as connection:
        execute_many(connection, insert(_ROWS), [{"name": "a", "at": at}], json_text=str)
        statement = update(_ROWS).where(_ROWS.c.name == bindparam("b_name")).values(count=None)
        execute_many(connection, statement, [{"b_name": "a"}], json_text=str)
        written = connection.execute(select(_ROWS.c.count, _ROWS.c.changes)).one()
    assert tuple(written) == (None, 1)  # None as the statement says, not the insert default 7


def test_a_default_computed_in_python_must_be_given_in_the_rows(engine: Engine) -> None:
    with engine.begin() as connection, pytest.raises(ValueError, match="Column 'at' has a default computed in Python"):
        execute_many(connection, insert(_ROWS), [{"name": "c"}], json_text=str)
