"""The message store: every accepted message, its state per target and its timeline.

SQLite (a file) is the embedded default; PostgreSQL is used by setting ``HUB_DATABASE_URL``.
Every public method raises :class:`hub.errors.StoreUnavailableError` when the database
cannot be reached, so callers answer 503 or retry instead of crashing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import orjson
import structlog
from sqlalchemy import Select, Table, bindparam, delete, event, func, insert, select, text, true, update
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_fixed

from hub.envelope import Envelope
from hub.errors import StoreUnavailableError
from hub.store._errors import reachable
from hub.store._group_commit import GroupCommit
from hub.store._plain_sql import execute_many
from hub.store._writer_thread import WriterThread, sqlite_pragmas
from hub.store.models import DeliveryEventRow, DeliveryRow, DossierCursorRow, MessageRow

log = structlog.get_logger(__name__)

__all__ = ["DeliveryState", "DeliveryView", "EventView", "MessageStore", "MessageView", "OverdueDelivery"]


class DeliveryState:
    """States of a message towards one target."""

    PENDING = "pending"  # stored, broker has not confirmed yet (not yet answered 202)
    ACCEPTED = "accepted"  # stored and confirmed by the broker
    RETRYING = "retrying"
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"
    REPLAYED = "replayed"  # sent again from the dead-letter queue by an operator
    SUPERSEDED = "superseded"  # an older dossier state not sent because a newer one was delivered
    DISCARDED = "discarded"

    FINAL = frozenset({DELIVERED, SUPERSEDED, DISCARDED})
    OPEN = frozenset({PENDING, ACCEPTED, RETRYING, REPLAYED})


#: States whose copy is sent again when it has not reached the worker long after it was due.
_RESENT_WHEN_OVERDUE = (DeliveryState.RETRYING, DeliveryState.REPLAYED)


class OverdueDelivery(NamedTuple):
    """A delivery whose retry or replay copy is overdue (see ``MessageStore.overdue_retries``)."""

    envelope: Envelope
    target: str
    attempts: int
    replayed: bool


@dataclass(frozen=True, slots=True)
class DeliveryView:
    target: str
    route: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None
    updated_at: datetime
    #: An attempt may have reached the target unseen: look the message up there before sending it.
    in_doubt: bool = False


@dataclass(frozen=True, slots=True)
class EventView:
    target: str | None
    kind: str
    attempt: int | None
    detail: str | None
    actor: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class MessageView:
    envelope: Envelope
    idempotency_key: str | None
    deliveries: tuple[DeliveryView, ...]
    events: tuple[EventView, ...] = field(default=())

    def targets(self) -> list[str]:
        return [d.target for d in self.deliveries]


@dataclass(frozen=True, slots=True)
class _Accepted:
    message_id: str
    message_type: str
    source: str
    dossier_code: str | None
    idempotency_key: str | None
    payload: dict[str, Any]
    targets: tuple[tuple[str, str], ...]
    accepted_at: datetime


@dataclass(frozen=True, slots=True)
class _Delivered:
    message_id: str
    target: str
    attempt: int
    dossier_code: str | None
    seq: int | None


R = TypeVar("R")

#: Under load, how long an accept waits for others to share its transaction (SQLite; see ``_accepted``).
ACCEPT_LINGER_SECONDS = 0.005


def _json_text(value: Any) -> str:
    """JSON columns are written by orjson: several times faster than ``json.dumps``, and UTF-8 where
    ``json.dumps`` writes every Vietnamese letter as a six-byte ``\\uXXXX`` escape."""
    return orjson.dumps(value).decode()


def _log_failed_background_write(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and (error := future.exception()) is not None:
        log.warning(
            "store_write_deferred_failed",
            error=str(error),
            detail="A confirmed message stays 'pending'; the outbox relay publishes it again.",
        )


def core_execute_many(connection: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> Sequence[Any]:
    """A grouped write's statement for all its rows through SQLAlchemy Core; the rows of an ``INSERT … RETURNING``."""
    result = connection.execute(statement, rows)
    return result.all() if result.returns_rows else []


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every time in the store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _stored_time(value: datetime | str | None) -> datetime | None:
    """A stored time as an aware datetime: SQLAlchemy gives datetimes, a plain sqlite3 read gives text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return _aware(value)


def _envelope(row: MessageRow) -> Envelope:
    return Envelope(
        id=row.id,
        seq=row.seq,
        type=row.type,
        source=row.source,
        dossier_code=row.dossier_code,
        payload=row.payload,
        accepted_at=_aware(row.accepted_at) or _now(),
    )


def _delivery_statement(*, with_cursor: bool) -> Select[Any]:
    """Built once: building a statement and its cache key costs more than running it."""
    deliveries = cast(Table, DeliveryRow.__table__)
    columns: list[Any] = [
        deliveries.c.route, deliveries.c.state, deliveries.c.attempts, deliveries.c.next_attempt_at,
        deliveries.c.last_error, deliveries.c.delivered_at, deliveries.c.updated_at, deliveries.c.in_doubt,
    ]  # fmt: skip
    if with_cursor:
        cursors = cast(Table, DossierCursorRow.__table__)
        columns.append(
            select(cursors.c.delivered_seq)
            .where(cursors.c.target == bindparam("target"), cursors.c.dossier_code == bindparam("dossier_code"))
            .scalar_subquery()
        )
    return select(*columns).where(
        deliveries.c.message_id == bindparam("message_id"), deliveries.c.target == bindparam("target")
    )


_DELIVERY = _delivery_statement(with_cursor=False)
_DELIVERY_AND_CURSOR = _delivery_statement(with_cursor=True)
#: The same read as plain SQL for the SQLite fast path (``MessageStore._read_on_loop``).
_DELIVERY_SQL = str(_DELIVERY_AND_CURSOR.compile(dialect=SQLiteDialect(paramstyle="named")))

# The grouped writes' statements, built once: building one costs more than running it.
_MESSAGES = cast(Table, MessageRow.__table__)
_DELIVERIES = cast(Table, DeliveryRow.__table__)
_EVENTS = cast(Table, DeliveryEventRow.__table__)
#: Unordered RETURNING, matched by id: asking for the parameters' order makes SQLAlchemy insert one row
#: per statement on SQLite.
_INSERT_MESSAGES = insert(_MESSAGES).returning(_MESSAGES.c.id, _MESSAGES.c.seq)
_INSERT_DELIVERIES = insert(_DELIVERIES)
_INSERT_EVENTS = insert(_EVENTS)
#: pending → accepted for one ``(b_message_id, b_target)`` per row of an executemany.
_PUBLISHED = (
    update(_DELIVERIES)
    .where(
        _DELIVERIES.c.message_id == bindparam("b_message_id"),
        _DELIVERIES.c.target == bindparam("b_target"),
        _DELIVERIES.c.state == DeliveryState.PENDING,
    )
    .values(state=DeliveryState.ACCEPTED, published_at=bindparam("b_now"), updated_at=bindparam("b_now"))
)
#: → delivered for one ``(b_message_id, b_target)`` per row of an executemany (no ORM row checks).
_DELIVERED = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.message_id == bindparam("b_message_id"), _DELIVERIES.c.target == bindparam("b_target"))
    .values(
        state=DeliveryState.DELIVERED,
        attempts=bindparam("b_attempts"),
        delivered_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
        next_attempt_at=None,
    )
)


def _delivery(row: DeliveryRow) -> DeliveryView:
    return DeliveryView(
        target=row.target,
        route=row.route,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=_aware(row.next_attempt_at),
        last_error=row.last_error,
        delivered_at=_aware(row.delivered_at),
        updated_at=_aware(row.updated_at) or _now(),
        in_doubt=bool(row.in_doubt),
    )


def _event(row: DeliveryEventRow) -> EventView:
    return EventView(
        target=row.target,
        kind=row.kind,
        attempt=row.attempt,
        detail=row.detail,
        actor=row.actor,
        at=_aware(row.at) or _now(),
    )


def sync_url(url: str) -> str:
    """The synchronous driver URL for Alembic (aiosqlite → sqlite, psycopg stays psycopg)."""
    parsed = make_url(url)
    driver = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql+psycopg"}.get(
        parsed.drivername, parsed.drivername
    )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def async_url(url: str) -> str:
    parsed = make_url(url)
    driver = {
        "sqlite": "sqlite+aiosqlite",
        "postgresql": "postgresql+psycopg",
        "postgres": "postgresql+psycopg",
        "postgresql+psycopg2": "postgresql+psycopg",
    }.get(parsed.drivername, parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


class MessageStore:
    """Async access to the message store. Create with :meth:`open`, close with :meth:`aclose`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.is_sqlite = engine.dialect.name == "sqlite"
        database = engine.url.database if self.is_sqlite else None
        self._sqlite_file = database if database and database != ":memory:" else None
        self._loop_reader: sqlite3.Connection | None = None
        # SQLite takes one writer at a time and makes the others sleep and poll (up to 100 ms a
        # turn) until it is free. Queueing this process's writers here instead wakes the next one
        # as soon as the previous commits.
        self._write_turn = asyncio.Lock() if self.is_sqlite else None
        self._writer = WriterThread(self._sqlite_file, json_serializer=_json_text) if self._sqlite_file else None
        # On SQLite the accepts are written in the event loop's thread (``_write(inline=True)``), where a
        # write is too short for the next batch to fill meanwhile: under load a batch waits
        # ACCEPT_LINGER_SECONDS for others to join it.
        self._accepted: GroupCommit[_Accepted, int] = GroupCommit(
            self._write_accepted, linger=ACCEPT_LINGER_SECONDS if self._writer else 0.0, linger_under_load_only=True
        )
        self._published: GroupCommit[tuple[str, tuple[str, ...]], None] = GroupCommit(
            self._write_published, linger=0.005
        )
        self._delivered: GroupCommit[_Delivered, int | None] = GroupCommit(self._write_delivered)

    @classmethod
    def open(cls, url: str, *, pool_size: int = 20) -> MessageStore:
        url = async_url(url)
        parsed = make_url(url)
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs = {"connect_args": {"timeout": 30}}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=10)
        engine = create_async_engine(url, json_serializer=_json_text, json_deserializer=orjson.loads, **kwargs)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return cls(engine)

    @property
    def engine(self) -> AsyncEngine:
        """The database engine, for feature tables kept beside the messages (audit, logins)."""
        return self._engine

    async def drain_writes(self) -> None:
        """Wait until every grouped write queued so far is committed (or has failed)."""
        for writes in (self._accepted, self._published, self._delivered):
            await writes.drain()

    async def aclose(self) -> None:
        await self.drain_writes()
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
        await self._engine.dispose()

    # ------------------------------------------------------------------ plumbing

    @asynccontextmanager
    async def _session(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in a transaction; ``write=True`` for one that changes rows (see ``_write_turn``)."""
        turn = self._write_turn if write else None
        async with reachable("The message store"), turn or nullcontext(), self._sessions() as session, session.begin():
            yield session

    async def _write(self, work: Callable[[Connection], R], *, inline: bool = False) -> R:
        """Run ``work`` in one transaction on a bare connection: the grouped writes, Core statements that need
        no ORM session (whose own cost is most of a small transaction's). On SQLite it runs in the writer
        thread, one round trip for the whole transaction, or with ``inline`` in the event loop's own thread
        unless another process holds the file's write lock (see :mod:`._writer_thread`); elsewhere through
        the async engine. Takes the write turn like ``_session(write=True)``."""
        async with reachable("The message store"), self._write_turn or nullcontext():
            if self._writer is not None:
                if not inline:
                    return await self._writer.run(work)
                result = await self._writer.run_inline(work)
                if self._writer.checkpoint_due:  # the loop's connection never checkpoints: the thread does
                    await self._writer.checkpoint()
                return result
            async with self._engine.begin() as connection:
                return await connection.run_sync(work)

    def _execute_many(self, connection: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> Sequence[Any]:
        """One grouped write's statement for all its rows: on SQLite as plain SQL with the rows as tuples
        (:mod:`._plain_sql`: SQLAlchemy's per-row work was most of the writer thread's), elsewhere through
        Core. Returns the rows of an ``INSERT … RETURNING``."""
        if self.is_sqlite:
            return execute_many(connection, statement, rows, json_text=_json_text)
        return core_execute_many(connection, statement, rows)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A bare connection for the worker's hot reads: one Core statement, no ORM session around it
        (a session costs more than the primary-key lookups it would carry)."""
        async with reachable("The message store"), self._engine.connect() as connection:
            yield connection

    async def migrate(self) -> None:
        """Bring the schema up to date with Alembic (safe to call from several processes at once)."""
        from alembic import command  # noqa: PLC0415 - Alembic adds ~160 ms (15 %) to every import of the store
        from alembic.config import Config  # noqa: PLC0415 - only migrating needs it

        config = Config(str(Path(__file__).with_name("alembic.ini")))

        def upgrade(connection: Connection) -> None:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(7217720261126)"))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

        try:
            async with self._engine.begin() as connection:
                await connection.run_sync(upgrade)
        except (OperationalError, DBAPIError, OSError) as exc:
            raise StoreUnavailableError(
                f"The message store cannot be migrated ({type(exc).__name__}: {str(exc).splitlines()[0]})."
            ) from exc

    async def ping(self) -> None:
        async with self._session() as session:
            await session.execute(text("SELECT 1"))

    # ------------------------------------------------------------------ ingress

    async def accept(
        self,
        *,
        message_type: str,
        source: str,
        dossier_code: str | None,
        payload: dict[str, Any],
        targets: Sequence[tuple[str, str]],
        idempotency_key: str | None,
        message_id: str,
    ) -> tuple[MessageView, bool]:
        """Store a new message and one pending delivery per ``(target, route)``.

        Returns the message and ``True``; or, when ``idempotency_key`` was seen before from
        the same source, the original message and ``False`` (nothing is stored twice).
        """
        if idempotency_key is not None:
            existing = await self.find_by_idempotency_key(source, idempotency_key)
            if existing is not None:
                return existing, False
        item = _Accepted(
            message_id, message_type, source, dossier_code, idempotency_key, payload, tuple(targets), _now()
        )
        try:
            # Concurrent requests share a transaction (see :mod:`._group_commit`); each returns once
            # its own message is committed.
            seq = await self._accepted.submit(item)
        except IntegrityError:
            if idempotency_key is None:
                raise
            existing = await self.find_by_idempotency_key(source, idempotency_key)
            if existing is None:
                raise
            return existing, False
        envelope = Envelope(
            id=message_id, seq=seq, type=message_type, source=source, dossier_code=dossier_code,
            payload=payload, accepted_at=item.accepted_at,
        )  # fmt: skip
        deliveries = tuple(
            DeliveryView(t, r, DeliveryState.PENDING, 0, None, None, None, item.accepted_at) for t, r in targets
        )
        return MessageView(envelope, idempotency_key, deliveries), True

    async def _write_accepted(self, items: Sequence[_Accepted]) -> list[int]:
        """One multi-row insert per table; returns each message's ``seq`` in the items' order."""

        many = self._execute_many

        def work(connection: Connection) -> list[int]:
            inserted = many(
                connection,
                _INSERT_MESSAGES,
                [
                    {
                        "id": i.message_id,
                        "type": i.message_type,
                        "source": i.source,
                        "dossier_code": i.dossier_code,
                        "idempotency_key": i.idempotency_key,
                        "payload": i.payload,
                        "accepted_at": i.accepted_at,
                    }
                    for i in items
                ],
            )
            seq_of = {message_id: int(seq) for message_id, seq in inserted}
            many(
                connection,
                _INSERT_DELIVERIES,
                [
                    {
                        "message_id": i.message_id,
                        "target": target,
                        "route": route,
                        "state": DeliveryState.PENDING,
                        "attempts": 0,
                        "in_doubt": False,
                        "updated_at": i.accepted_at,
                    }
                    for i in items
                    for target, route in i.targets
                ],
            )
            many(
                connection,
                _INSERT_EVENTS,
                [{"message_id": i.message_id, "target": None, "kind": "accepted", "at": i.accepted_at} for i in items],
            )
            return [seq_of[i.message_id] for i in items]

        return await self._write(work, inline=True)

    async def find_by_idempotency_key(self, source: str, key: str) -> MessageView | None:
        async with self._session() as session:
            row = (
                await session.execute(
                    select(MessageRow).where(MessageRow.source == source, MessageRow.idempotency_key == key)
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            return await self._view(session, row, with_events=False)

    async def mark_published(self, message_id: str, targets: Iterable[str], *, wait: bool = True) -> None:
        """The broker confirmed the message for these targets: pending → accepted.

        Concurrent calls share a transaction (see :mod:`._group_commit`). With ``wait=False`` it
        returns at once and the write follows within milliseconds, in a larger batch. The message is
        already in the store and confirmed by the broker, so nothing can be lost meanwhile: should
        the write never happen (the process dies, the database is away), the message stays
        ``pending`` and the outbox relay publishes it again, a copy the worker recognises.
        """
        if wait:
            await self._published.submit((message_id, tuple(targets)))
            return
        self._published.submit_later((message_id, tuple(targets))).add_done_callback(_log_failed_background_write)

    async def _write_published(self, items: Sequence[tuple[str, tuple[str, ...]]]) -> list[None]:
        now = _now()
        rows = [
            {"b_message_id": message_id, "b_target": target, "b_now": now}
            for message_id, targets in items
            for target in targets
        ]
        await self._write(lambda connection: self._execute_many(connection, _PUBLISHED, rows), inline=True)
        return [None] * len(items)

    async def forget_unpublished(self, message_id: str) -> bool:
        """Remove a message whose publish failed before 202, so a 503 really means 'not accepted'.

        Only removes it while every delivery is still pending; returns whether it did.
        """
        async with self._session(write=True) as session:
            open_count = (
                await session.execute(
                    select(func.count())
                    .select_from(DeliveryRow)
                    .where(DeliveryRow.message_id == message_id, DeliveryRow.state != DeliveryState.PENDING)
                )
            ).scalar_one()
            if open_count:
                return False
            await session.execute(delete(DeliveryEventRow).where(DeliveryEventRow.message_id == message_id))
            await session.execute(delete(DeliveryRow).where(DeliveryRow.message_id == message_id))
            await session.execute(delete(MessageRow).where(MessageRow.id == message_id))
            return True

    async def unpublished(
        self, older_than: timedelta, limit: int = 500, *, targets: Iterable[str] | None = None
    ) -> list[tuple[Envelope, list[str]]]:
        """Messages stored but never confirmed by the broker (the ingress died or the broker failed);
        only towards ``targets`` when given (those the caller can publish to)."""
        cutoff = _now() - older_than
        only = DeliveryRow.target.in_(list(targets)) if targets is not None else true()
        async with self._session() as session:
            rows = (
                await session.execute(
                    select(MessageRow, DeliveryRow.target)
                    .join(DeliveryRow, DeliveryRow.message_id == MessageRow.id)
                    .where(DeliveryRow.state == DeliveryState.PENDING, DeliveryRow.updated_at < cutoff, only)
                    .order_by(MessageRow.seq)
                    .limit(limit)
                )
            ).all()
        grouped: dict[str, tuple[Envelope, list[str]]] = {}
        for message, target in rows:
            grouped.setdefault(message.id, (_envelope(message), []))[1].append(target)
        return list(grouped.values())

    async def overdue_retries(
        self, overdue_by: timedelta, *, targets: Iterable[str], limit: int = 200
    ) -> list[OverdueDelivery]:
        """Deliveries still ``retrying`` ``overdue_by`` after their retry was due (their retry copy has
        not come back from RabbitMQ's retry tier), or still ``replayed`` ``overdue_by`` after the replay
        (its copy never reached the worker: ``hub replay`` died between its record and its publish)."""
        cutoff = _now() - overdue_by
        async with self._session() as session:
            rows = (
                await session.execute(
                    select(MessageRow, DeliveryRow.target, DeliveryRow.attempts, DeliveryRow.state)
                    .join(DeliveryRow, DeliveryRow.message_id == MessageRow.id)
                    .where(
                        DeliveryRow.state.in_(_RESENT_WHEN_OVERDUE),
                        DeliveryRow.next_attempt_at < cutoff,
                        DeliveryRow.target.in_(list(targets)),
                    )
                    .order_by(MessageRow.seq)
                    .limit(limit)
                )
            ).all()
        return [
            OverdueDelivery(_envelope(message), target, attempts, replayed=state == DeliveryState.REPLAYED)
            for message, target, attempts, state in rows
        ]

    async def claim_overdue_retry(self, message_id: str, target: str, *, overdue_by: timedelta) -> bool:
        """Move an overdue retry's (or replay's) due time ``overdue_by`` on, so that it is sent again once:
        True for the one caller (of any process) that moved it while it was still overdue."""

        def work(connection: Connection) -> bool:
            now = _now()
            result = connection.execute(
                update(_DELIVERIES)
                .where(
                    _DELIVERIES.c.message_id == message_id,
                    _DELIVERIES.c.target == target,
                    _DELIVERIES.c.state.in_(_RESENT_WHEN_OVERDUE),
                    _DELIVERIES.c.next_attempt_at < now - overdue_by,
                )
                .values(next_attempt_at=now + overdue_by)
            )
            return bool(result.rowcount)

        return await self._write(work)

    # ------------------------------------------------------------------ worker

    async def delivery(self, message_id: str, target: str) -> DeliveryView | None:
        delivery, _ = await self._delivery_read(message_id, target, None)
        return delivery

    async def message_envelope(self, message_id: str) -> Envelope | None:
        async with self._session() as session:
            row = (await session.execute(select(MessageRow).where(MessageRow.id == message_id))).scalar_one_or_none()
            return None if row is None else _envelope(row)

    async def message_at_seq(self, seq: int) -> Envelope | None:
        async with self._session() as session:
            row = await session.get(MessageRow, seq)
            return None if row is None else _envelope(row)

    async def delivery_and_cursor(
        self, message_id: str, target: str, dossier_code: str
    ) -> tuple[DeliveryView | None, int | None]:
        """:meth:`delivery` and :meth:`cursor` in one statement (the worker needs both for each dossier state)."""
        return await self._delivery_read(message_id, target, dossier_code)

    async def _delivery_read(
        self, message_id: str, target: str, dossier_code: str | None
    ) -> tuple[DeliveryView | None, int | None]:
        params = {"message_id": message_id, "target": target, "dossier_code": dossier_code}
        answered, row = self._read_on_loop(params)
        if not answered:
            statement = _DELIVERY_AND_CURSOR if dossier_code is not None else _DELIVERY
            async with self._read() as connection:
                row = (await connection.execute(statement, params)).first()
        if row is None:
            return None, None
        delivery = DeliveryView(
            target=target, route=row[0], state=row[1], attempts=row[2], next_attempt_at=_stored_time(row[3]),
            last_error=row[4], delivered_at=_stored_time(row[5]), updated_at=_stored_time(row[6]) or _now(),
            in_doubt=bool(row[7]),
        )  # fmt: skip
        return delivery, (None if dossier_code is None or row[8] is None else int(row[8]))

    def _read_on_loop(self, params: dict[str, Any]) -> tuple[bool, Any]:
        """SQLite only: the worker's primary-key read on a plain sqlite3 connection, in the event loop's own
        thread. A read in WAL mode does not wait for writers, so it needs none of the hop to aiosqlite's
        thread and back through SQLAlchemy, which costs far more than the read itself. Returns
        ``(False, None)`` when it cannot answer at once (the file is busy, another thread): the caller then
        reads the usual way."""
        if self._sqlite_file is None:
            return False, None
        try:
            if self._loop_reader is None:
                reader = sqlite3.connect(self._sqlite_file, timeout=0.02)  # never hold the loop for long
                reader.execute("PRAGMA query_only = 1")
                self._loop_reader = reader
            rows = self._loop_reader.execute(_DELIVERY_SQL, params).fetchall()  # all: the read ends here
        except sqlite3.Error:
            return False, None
        return True, rows[0] if rows else None

    async def cursor(self, target: str, dossier_code: str) -> int | None:
        async with self._session() as session:
            row = await session.get(DossierCursorRow, (target, dossier_code))
            return None if row is None else row.delivered_seq

    async def earlier_in_flight(self, target: str, dossier_code: str, seq: int, since: datetime) -> bool:
        """True when a message of the dossier accepted before ``seq`` is still on its way to ``target``,
        or reached it after ``since`` (so a call made at ``since`` may have overtaken it)."""
        async with self._session() as session:
            found = (
                await session.execute(
                    select(MessageRow.seq)
                    .join(DeliveryRow, DeliveryRow.message_id == MessageRow.id)
                    .where(
                        MessageRow.dossier_code == dossier_code,
                        MessageRow.seq < seq,
                        DeliveryRow.target == target,
                        DeliveryRow.state.in_(list(DeliveryState.OPEN))
                        | ((DeliveryRow.state == DeliveryState.DELIVERED) & (DeliveryRow.delivered_at >= since)),
                    )
                    .limit(1)
                )
            ).first()
            return found is not None

    async def mark_delivered(
        self, message_id: str, target: str, *, attempt: int, dossier_code: str | None, seq: int | None
    ) -> int | None:
        """Record a delivery; ``seq`` (for full-state messages) moves the dossier's cursor forward.

        Returns, when ``seq`` is given, the dossier's cursor as this write left it: greater than
        ``seq`` when another worker delivered a newer state meanwhile. Returns once committed;
        concurrent calls share a transaction (see :mod:`._group_commit`).
        """
        return await self._delivered.submit(_Delivered(message_id, target, attempt, dossier_code, seq))

    async def _write_delivered(self, items: Sequence[_Delivered]) -> list[int | None]:
        now = _now()
        cursors: dict[tuple[str, str], int] = {}
        for item in items:
            if item.dossier_code is not None and item.seq is not None:
                key = (item.target, item.dossier_code)
                cursors[key] = max(item.seq, cursors.get(key, item.seq))

        many = self._execute_many

        def work(connection: Connection) -> dict[tuple[str, str], int]:
            many(
                connection,
                _DELIVERED,
                [
                    {"b_message_id": i.message_id, "b_target": i.target, "b_attempts": i.attempt, "b_now": now}
                    for i in items
                ],
            )
            many(
                connection,
                _INSERT_EVENTS,
                [
                    {
                        "message_id": i.message_id,
                        "target": i.target,
                        "kind": "delivered",
                        "attempt": i.attempt,
                        "at": now,
                    }
                    for i in items
                ],
            )
            return _advance_cursors(connection, cursors) if cursors else {}

        after = await self._write(work)
        return [
            after.get((i.target, i.dossier_code)) if i.dossier_code is not None and i.seq is not None else None
            for i in items
        ]

    async def mark_delivered_many(self, message_ids: Sequence[str], target: str, *, attempts: Sequence[int]) -> None:
        await self._write_delivered(
            [_Delivered(m, target, a, None, None) for m, a in zip(message_ids, attempts, strict=True)]
        )

    async def _transition(
        self,
        message_id: str,
        target: str,
        *,
        state: str,
        kind: str,
        attempt: int | None,
        detail: str | None,
        next_attempt_at: datetime | None = None,
        actor: str | None = None,
        only_from: Iterable[str] | None = None,
        in_doubt: bool = False,
    ) -> bool:
        now = _now()
        values: dict[str, Any] = {"state": state, "updated_at": now, "next_attempt_at": next_attempt_at}
        if in_doubt:  # set, never cleared: a clear answer later does not undo an earlier attempt's doubt
            values["in_doubt"] = True
        if attempt is not None:
            values["attempts"] = attempt
        if detail is not None and kind not in ("replayed", "replay_failed"):  # the dead letter's reason stays
            values["last_error"] = detail
        async with self._session(write=True) as session:
            statement = update(DeliveryRow).where(DeliveryRow.message_id == message_id, DeliveryRow.target == target)
            if only_from is not None:
                statement = statement.where(DeliveryRow.state.in_(list(only_from)))
            result = await session.execute(statement.values(**values))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                return False
            session.add(
                DeliveryEventRow(
                    message_id=message_id, target=target, kind=kind, attempt=attempt, detail=detail,
                    actor=actor, at=now,
                )
            )  # fmt: skip
            return True

    async def mark_retrying(
        self,
        message_id: str,
        target: str,
        *,
        attempt: int,
        delay_seconds: float,
        reason: str,
        in_doubt: bool = False,
    ) -> None:
        """Record a failed attempt and when the next is due; ``in_doubt`` when the attempt may have
        reached the target unseen (no answer came), which every later copy then reads."""
        await self._transition(
            message_id, target, state=DeliveryState.RETRYING, kind="attempt_failed", attempt=attempt,
            detail=reason, next_attempt_at=_now() + timedelta(seconds=delay_seconds), in_doubt=in_doubt,
        )  # fmt: skip

    async def mark_dead_lettered(
        self, message_id: str, target: str, *, attempt: int, reason: str, in_doubt: bool = False
    ) -> None:
        await self._transition(
            message_id, target, state=DeliveryState.DEAD_LETTERED, kind="dead_lettered", attempt=attempt,
            detail=reason, in_doubt=in_doubt,
        )  # fmt: skip

    async def mark_in_doubt(self, message_ids: Sequence[str], target: str) -> None:
        """Record that an attempt of these messages was cut off before its answer (the worker was stopped
        mid-call), so it may have reached the target. Only the doubt is set, as a timed-out attempt sets it
        (never cleared); the state stays open, since the message goes back to RabbitMQ unacknowledged."""
        async with self._session(write=True) as session:
            await session.execute(
                update(DeliveryRow)
                .where(
                    DeliveryRow.message_id.in_(list(message_ids)),
                    DeliveryRow.target == target,
                    DeliveryRow.state.in_(list(DeliveryState.OPEN)),
                )
                .values(in_doubt=True)
            )

    async def mark_superseded(self, message_id: str, target: str, *, attempt: int, newer_seq: int) -> None:
        await self._transition(
            message_id, target, state=DeliveryState.SUPERSEDED, kind="superseded", attempt=attempt,
            detail=f"Not sent: a newer state of the dossier (message #{newer_seq}) was already delivered.",
        )  # fmt: skip

    async def mark_replayed(self, message_id: str, target: str, *, actor: str) -> bool:
        """Record a replay; its due time is now, so a copy that never arrives is sent again (overdue_retries)."""
        return await self._transition(
            message_id, target, state=DeliveryState.REPLAYED, kind="replayed", attempt=None,
            detail="Sent again from the dead-letter queue.", actor=actor, next_attempt_at=_now(),
            only_from=[DeliveryState.DEAD_LETTERED],
        )  # fmt: skip

    async def undo_replay(self, message_id: str, target: str, *, actor: str, reason: str) -> bool:
        """Put a delivery marked replayed back to dead-lettered when its copy never reached the broker."""
        return await self._transition(
            message_id, target, state=DeliveryState.DEAD_LETTERED, kind="replay_failed", attempt=None,
            detail=reason, actor=actor, only_from=[DeliveryState.REPLAYED],
        )  # fmt: skip

    async def mark_discarded(self, message_id: str, target: str, *, actor: str, reason: str) -> bool:
        return await self._transition(
            message_id, target, state=DeliveryState.DISCARDED, kind="discarded", attempt=None,
            detail=reason, actor=actor, only_from=[DeliveryState.DEAD_LETTERED],
        )  # fmt: skip

    # ------------------------------------------------------------------ queries

    async def _view(self, session: AsyncSession, row: MessageRow, *, with_events: bool) -> MessageView:
        deliveries = (
            (
                await session.execute(
                    select(DeliveryRow).where(DeliveryRow.message_id == row.id).order_by(DeliveryRow.target)
                )
            )
            .scalars()
            .all()
        )
        events: Sequence[DeliveryEventRow] = ()
        if with_events:
            events = (
                (
                    await session.execute(
                        select(DeliveryEventRow)
                        .where(DeliveryEventRow.message_id == row.id)
                        .order_by(DeliveryEventRow.id)
                    )
                )
                .scalars()
                .all()
            )
        return MessageView(
            envelope=_envelope(row),
            idempotency_key=row.idempotency_key,
            deliveries=tuple(_delivery(d) for d in deliveries),
            events=tuple(_event(e) for e in events),
        )

    async def message(self, message_id: str) -> MessageView | None:
        async with self._session() as session:
            row = (await session.execute(select(MessageRow).where(MessageRow.id == message_id))).scalar_one_or_none()
            return None if row is None else await self._view(session, row, with_events=True)

    async def dossier_messages(self, dossier_code: str, limit: int = 1000) -> list[MessageView]:
        async with self._session() as session:
            rows = (
                (
                    await session.execute(
                        select(MessageRow)
                        .where(MessageRow.dossier_code == dossier_code)
                        .order_by(MessageRow.seq)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            return [await self._view(session, row, with_events=True) for row in rows]

    async def dead_letters(self, target: str | None = None, limit: int = 1000) -> list[tuple[Envelope, DeliveryView]]:
        async with self._session() as session:
            statement = (
                select(MessageRow, DeliveryRow)
                .join(DeliveryRow, DeliveryRow.message_id == MessageRow.id)
                .where(DeliveryRow.state == DeliveryState.DEAD_LETTERED)
                .order_by(MessageRow.seq)
                .limit(limit)
            )
            if target is not None:
                statement = statement.where(DeliveryRow.target == target)
            rows = (await session.execute(statement)).all()
            return [(_envelope(m), _delivery(d)) for m, d in rows]

    async def count_by_state(self, target: str | None = None) -> dict[str, int]:
        async with self._session() as session:
            statement = select(DeliveryRow.state, func.count()).group_by(DeliveryRow.state)
            if target is not None:
                statement = statement.where(DeliveryRow.target == target)
            return dict((await session.execute(statement)).all())

    async def oldest_open_accepted_at(self, target: str) -> datetime | None:
        async with self._session() as session:
            value = (
                await session.execute(
                    select(func.min(MessageRow.accepted_at))
                    .join(DeliveryRow, DeliveryRow.message_id == MessageRow.id)
                    .where(DeliveryRow.target == target, DeliveryRow.state.in_(list(DeliveryState.OPEN)))
                )
            ).scalar_one_or_none()
            return _aware(value)

    # ------------------------------------------------------------------ ops console and health gauges

    async def open_counts(self) -> dict[tuple[str, str, str], int]:
        """``(target, route, state) -> count`` of deliveries not yet done (open or dead-lettered)."""
        states = [*DeliveryState.OPEN, DeliveryState.DEAD_LETTERED]
        async with self._session() as session:
            rows = await session.execute(
                select(DeliveryRow.target, DeliveryRow.route, DeliveryRow.state, func.count())
                .where(DeliveryRow.state.in_(states))
                .group_by(DeliveryRow.target, DeliveryRow.route, DeliveryRow.state)
            )
            return {(t, r, s): n for t, r, s, n in rows.all()}

    async def event_counts_since(
        self, target: str, since: datetime, kinds: Sequence[str]
    ) -> dict[tuple[str, str], int]:
        """``(route, kind) -> count`` of a target's timeline events since ``since``."""
        async with self._session() as session:
            rows = await session.execute(
                select(DeliveryRow.route, DeliveryEventRow.kind, func.count())
                .join(
                    DeliveryRow,
                    (DeliveryRow.message_id == DeliveryEventRow.message_id) & (DeliveryRow.target == target),
                )
                .where(
                    DeliveryEventRow.target == target,
                    DeliveryEventRow.kind.in_(list(kinds)),
                    DeliveryEventRow.at >= since,
                )
                .group_by(DeliveryRow.route, DeliveryEventRow.kind)
            )
            return {(r, k): n for r, k, n in rows.all()}

    async def accepted_since(self, since: datetime) -> dict[str, int]:
        """``source system -> messages accepted`` since ``since``."""
        async with self._session() as session:
            rows = await session.execute(
                select(MessageRow.source, func.count())
                .join(DeliveryEventRow, DeliveryEventRow.message_id == MessageRow.id)
                .where(
                    DeliveryEventRow.target.is_(None),
                    DeliveryEventRow.kind == "accepted",
                    DeliveryEventRow.at >= since,
                )
                .group_by(MessageRow.source)
            )
            return {str(source): int(n) for source, n in rows.all()}

    async def last_event(self, target: str, kinds: Sequence[str]) -> EventView | None:
        """The newest timeline event of a target among ``kinds`` (one index lookup per kind)."""
        newest: EventView | None = None
        async with self._session() as session:
            for kind in kinds:
                row = (
                    await session.execute(
                        select(DeliveryEventRow)
                        .where(DeliveryEventRow.target == target, DeliveryEventRow.kind == kind)
                        .order_by(DeliveryEventRow.at.desc())
                        .limit(1)
                    )
                ).scalar_one_or_none()
                if row is not None and (newest is None or (_aware(row.at) or _now()) > newest.at):
                    newest = _event(row)
        return newest

    async def operator_events(
        self, targets: Iterable[str], *, limit: int = 100
    ) -> list[tuple[str, str | None, EventView]]:
        """Newest replays and discards (with who did them): ``(message id, dossier code, event)``."""
        found: list[tuple[str, str | None, EventView]] = []
        async with self._session() as session:
            for target in targets:
                rows = await session.execute(
                    select(DeliveryEventRow, MessageRow.dossier_code)
                    .join(MessageRow, MessageRow.id == DeliveryEventRow.message_id)
                    .where(
                        DeliveryEventRow.target == target,
                        DeliveryEventRow.kind.in_(["replayed", "discarded"]),
                    )
                    .order_by(DeliveryEventRow.at.desc())
                    .limit(limit)
                )
                found.extend((e.message_id, code, _event(e)) for e, code in rows.all())
        found.sort(key=lambda item: item[2].at, reverse=True)
        return found[:limit]


async def wait_for_store(store: MessageStore, *, attempts: int = 30, delay: float = 1.0) -> None:
    """Ping until the store answers (used at start-up); raise StoreUnavailableError after ``attempts``.
    Cancelling the call (a stop during start-up) ends the wait at once."""

    def waiting(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "store_unavailable", error=str(error), attempt=state.attempt_number, attempts=attempts, retry_in=delay
        )

    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(StoreUnavailableError),
        wait=wait_fixed(delay),
        stop=stop_after_attempt(attempts),
        before_sleep=waiting,
        reraise=True,
    ):
        with attempt:
            await store.ping()


def _advance_cursors(connection: Connection, cursors: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """Move each ``(target, dossier) -> seq`` cursor forward (never back); create the missing ones.

    Returns every cursor as it now stands."""
    table = cast(Table, DossierCursorRow.__table__)
    connection.execute(
        update(table)
        .where(
            table.c.target == bindparam("b_target"),
            table.c.dossier_code == bindparam("b_dossier"),
            table.c.delivered_seq < bindparam("b_seq"),
        )
        .values(delivered_seq=bindparam("b_seq")),
        [{"b_target": t, "b_dossier": d, "b_seq": seq} for (t, d), seq in cursors.items()],
    )
    existing = connection.execute(
        select(table.c.target, table.c.dossier_code, table.c.delivered_seq).where(
            table.c.target.in_({t for t, _ in cursors}), table.c.dossier_code.in_({d for _, d in cursors})
        )
    )
    after = {(t, d): int(seq) for t, d, seq in existing.all() if (t, d) in cursors}
    missing = cursors.keys() - after.keys()
    if missing:
        connection.execute(
            insert(table), [{"target": t, "dossier_code": d, "delivered_seq": cursors[t, d]} for t, d in missing]
        )
        after.update((key, cursors[key]) for key in missing)
    return after
