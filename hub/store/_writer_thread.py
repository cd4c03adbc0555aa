"""SQLite only: the grouped writes as one call to a writer thread each.

Through SQLAlchemy's async engine every statement of a transaction goes to aiosqlite's thread and
back several times (execute, fetch, close; begin and commit): a grouped write of 16 messages made
some twenty round trips between two threads, and those hops, not SQLite, were most of its cost
(bench/README.md). Here the whole transaction is one function that runs in a thread of its own on
a synchronous engine: one round trip per transaction. The event loop goes on serving requests while
it runs, so the next batch fills up meanwhile, as before.

The thread has one connection, so this process's grouped writes never wait for each other inside
SQLite; another process writing to the same file is waited for (busy timeout) in this thread, never in
the event loop's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

__all__ = ["WriterThread", "sqlite_pragmas"]

R = TypeVar("R")


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """What every connection of the store to its SQLite file sets (the async engine's ones too)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class WriterThread:
    """Runs ``work(connection)`` in one transaction on the writer thread; see the module's docstring."""

    def __init__(self, database: str, *, json_serializer: Callable[[Any], str]) -> None:
        self.engine: Engine = create_engine(
            f"sqlite:///{database}",
            poolclass=StaticPool,  # the one connection, kept open, only ever used by the one thread
            connect_args={"timeout": 30, "check_same_thread": False},
            json_serializer=json_serializer,
        )
        event.listen(self.engine, "connect", sqlite_pragmas)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-store-writer")

    async def run(self, work: Callable[[Connection], R]) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._transaction, work)

    def _transaction(self, work: Callable[[Connection], R]) -> R:
        with self.engine.begin() as connection:
            return work(connection)

    def close(self) -> None:
        """Wait for the writes under way, then close the connection."""
        self._thread.shutdown(wait=True)
        self.engine.dispose()
