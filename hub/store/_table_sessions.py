"""What every keeper of its own tables in the hub's database does the same way (a plugin's ledger, book
or logins in progress): transactions whose failures name the keeper, and times read back as UTC."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar, overload

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hub.store._errors import reachable

if TYPE_CHECKING:
    from sqlalchemy import Delete, Select, Update

__all__ = ["TableSessions", "as_utc", "utc_now"]

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """A stored time with its zone: SQLite hands back naive datetimes, and the hub stores UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class TableSessions:
    """Sessions on the hub's database (the store's engine) for one keeper of tables.

    ``what`` names the keeper in the sentence of :class:`~hub.errors.StoreUnavailableError` when the
    database cannot be reached ("The payment ledger cannot be reached …"); a constraint violation
    (IntegrityError) passes unchanged, for the caller to read as "already there".
    """

    def __init__(self, engine: AsyncEngine, what: str) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._what = what

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One session in one transaction, committed when the block ends without an error."""
        async with reachable(self._what), self._sessions() as session, session.begin():
            yield session

    async def all(self, statement: Select[T]) -> Sequence[T]:
        """The rows of one SELECT of one entity or column, in a transaction of its own."""
        async with self.transaction() as session:
            return (await session.scalars(statement)).all()

    async def one_or_none(self, statement: Select[T]) -> T | None:
        """The row of a SELECT that finds at most one, in a transaction of its own."""
        async with self.transaction() as session:
            return (await session.scalars(statement)).one_or_none()

    async def change(self, statement: Update | Delete) -> bool:
        """Run one UPDATE or DELETE in a transaction of its own; True when it changed a row (a conditional
        update that found its row still in the expected state: the caller won)."""
        async with self.transaction() as session:
            result = await session.execute(statement)
        return bool(getattr(result, "rowcount", 0))  # an UPDATE's or DELETE's result is a cursor's
