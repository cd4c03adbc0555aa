"""SQLite only: the grouped writes as one call to a writer thread each.

Through SQLAlchemy's async engine every statement of a transaction goes to aiosqlite's thread and
back several times (execute, fetch, close; begin and commit): a grouped write of 16 messages makes
some twenty round trips between two threads, and those hops, not SQLite, are most of its cost.
Here the whole transaction is one function that runs in a thread of its own on a synchronous
engine: one round trip per transaction. The event loop goes on serving requests while
it runs, so the next batch fills up meanwhile.

The thread has one connection, so this process's grouped writes never wait for each other inside
SQLite; another process writing to the same file is waited for (busy timeout) in this thread, never in
the event loop's.

The ingress's writes run in the event loop's own thread instead (:meth:`WriterThread.run_inline`),
on a second connection that never waits: when another process holds the file's write lock it gives
up at once and the write goes to the thread after all. Those are the accepts (with a short linger
under load, so that a batch still fills) and the published records. The hop to the thread and back,
and the two threads taking turns at the GIL, cost the ingress more CPU per message than SQLite's
own work, in user and kernel time alike. That connection never checkpoints the WAL
(``wal_autocheckpoint=0``), so the loop never waits for the disk's sync: after about 1,000 pages
written inline (counted from rows and commits) the writer thread runs a checkpoint beside the
loop's writes; only when the WAL keeps growing under steady load (4,000 frames) does the store run
one within its write turn, so that the WAL can start over. The thread's own commits (a worker's)
checkpoint as SQLite usually does.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

log = structlog.get_logger(__name__)

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
        # The event loop's own connection: it never waits for the lock and never checkpoints.
        self.loop_engine: Engine = create_engine(
            f"sqlite:///{database}",
            poolclass=StaticPool,
            connect_args={"timeout": 0, "check_same_thread": False},
            json_serializer=json_serializer,
        )
        event.listen(self.loop_engine, "connect", _loop_pragmas)
        self._changes_at_checkpoint = 0
        self._commits = 0
        self._beside: asyncio.Future[tuple[int, int, int]] | None = None
        #: The WAL kept growing under load: the store runs :meth:`checkpoint` in its write turn.
        self.checkpoint_due = False
        #: Checkpoints run (for tests).
        self.checkpoints = 0
        #: Writes that found the file locked by another process and went to the thread (for tests).
        self.inline_fallbacks = 0

    async def run(self, work: Callable[[Connection], R]) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._transaction, work)

    async def run_inline(self, work: Callable[[Connection], R]) -> R:
        """Run ``work`` in one transaction in the calling (event loop's) thread; when another process
        holds the write lock, roll back and run it in the writer thread, which waits for the lock."""
        try:
            with self.loop_engine.begin() as connection:
                result = work(connection)
                changes = connection.connection.dbapi_connection.total_changes  # type: ignore[union-attr]
        except OperationalError as exc:
            if not _is_locked(exc):
                raise
            self.inline_fallbacks += 1
            return await self.run(work)
        self._commits += 1
        if changes - self._changes_at_checkpoint + 4 * self._commits >= CHECKPOINT_AFTER:
            self._changes_at_checkpoint, self._commits = changes, 0
            self._checkpoint_beside()
        return result

    def _checkpoint_beside(self) -> None:
        """A checkpoint in the writer thread while the loop goes on writing: it copies what the WAL
        held when it started, and the WAL starts over at the first write after it caught up (at once
        under light load). Under steady load it may never catch up; once the WAL holds
        ``WAL_FRAMES_LIMIT`` frames, :meth:`checkpoint` runs in the write turn."""
        if self._beside is not None and not self._beside.done():
            return
        self._beside = asyncio.get_running_loop().run_in_executor(self._thread, self._checkpoint)
        self._beside.add_done_callback(self._checked_beside)

    def _checked_beside(self, future: asyncio.Future[tuple[int, int, int]]) -> None:
        if future.cancelled() or future.exception() is not None:
            log.warning("store_checkpoint_failed", error=repr(None if future.cancelled() else future.exception()))
            return
        self.checkpoints += 1
        _busy, frames, _copied = future.result()
        if frames >= WAL_FRAMES_LIMIT:
            self.checkpoint_due = True

    async def checkpoint(self) -> None:
        """A checkpoint in the writer thread while the caller holds the write turn: with no write of
        this process meanwhile it completes, and the next write starts the WAL over."""
        self.checkpoint_due = False
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._checkpoint)
        except Exception:  # the writes are committed: a failed checkpoint is tried again next time
            log.warning("store_checkpoint_failed", exc_info=True)
            return
        self.checkpoints += 1

    def _checkpoint(self) -> tuple[int, int, int]:
        """``PRAGMA wal_checkpoint(PASSIVE)``: (busy, frames in the WAL, frames copied)."""
        with self.engine.connect() as connection:
            row = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        return int(row[0]), int(row[1]), int(row[2])

    def _transaction(self, work: Callable[[Connection], R]) -> R:
        with self.engine.begin() as connection:
            return work(connection)

    def close(self) -> None:
        """Wait for the writes under way, then close the connections."""
        self._thread.shutdown(wait=True)
        self.engine.dispose()
        self.loop_engine.dispose()


#: Frames in the WAL (4 KiB pages) at which the checkpoint is run in the write turn: 16 MiB.
WAL_FRAMES_LIMIT = 4000
#: Rows written inline, plus four per commit, between two checkpoints: about the pages of WAL written
#: meanwhile (a commit writes a few pages of tables and indexes however few its rows; an accepted
#: message is four rows and about 1.3 pages), so the WAL stays near the 1,000 pages at which SQLite
#: checkpoints by itself.
CHECKPOINT_AFTER = 1000


def _loop_pragmas(dbapi_connection: Any, record: Any) -> None:
    sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")  # locked by another process: give up at once (see run_inline)
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # the writer thread checkpoints, never the event loop
    cursor.close()


def _is_locked(exc: OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED, extended codes included (``SQLITE_BUSY_SNAPSHOT`` and the like)."""
    original = exc.orig
    if not isinstance(original, sqlite3.OperationalError):
        return False
    return (original.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
