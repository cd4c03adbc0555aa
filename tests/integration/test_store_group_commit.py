"""Concurrent ``accept`` / ``mark_published`` / ``mark_delivered`` calls share transactions (group commit) and still
behave exactly like one call at a time: each caller's own rows, cursors that never move back, and
an error only for the caller whose write is wrong. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from hub.envelope import new_message_id
from hub.store import DeliveryState, MessageStore, _store
from hub.store import _writer_thread as writer_thread
from hub.store._group_commit import GroupCommit
from hub.store._store import core_execute_many

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[MessageStore]:
    store = MessageStore.open(database_url)
    await store.migrate()
    try:
        yield store
    finally:
        await store.aclose()


async def _accept(store: MessageStore, dossier: str, targets: list[str]) -> tuple[str, int]:
    view, _ = await store.accept(
        message_type="dossier.upserted",
        source="onestop",
        dossier_code=dossier,
        payload={"MaHoSo": dossier},
        targets=[(t, "dossier-sync") for t in targets],
        idempotency_key=None,
        message_id=new_message_id(),
    )
    return view.envelope.id, view.envelope.seq


async def _states(store: MessageStore, message_id: str) -> dict[str, tuple[str, int]]:
    view = await store.message(message_id)
    assert view is not None
    return {d.target: (d.state, d.attempts) for d in view.deliveries}


async def test_concurrent_publishes_and_deliveries_each_record_their_own_rows(store: MessageStore) -> None:
    run = uuid.uuid4().hex[:8]
    messages = [await _accept(store, f"G{run}.{i}-261126-0001", ["portal", "ministry"]) for i in range(40)]

    # Half the messages confirmed for one target only, the rest for both: all at once.
    await asyncio.gather(
        *(
            store.mark_published(message_id, ["portal"] if i % 2 else ["portal", "ministry"])
            for i, (message_id, _) in enumerate(messages)
        )
    )
    await asyncio.gather(
        *(
            store.mark_delivered(
                message_id, "portal", attempt=1 + i % 3, dossier_code=f"G{run}.{i}-261126-0001", seq=seq
            )
            for i, (message_id, seq) in enumerate(messages)
        )
    )

    for i, (message_id, seq) in enumerate(messages):
        states = await _states(store, message_id)
        assert states["portal"] == (DeliveryState.DELIVERED, 1 + i % 3)
        assert states["ministry"][0] == (DeliveryState.PENDING if i % 2 else DeliveryState.ACCEPTED)
        assert await store.cursor("portal", f"G{run}.{i}-261126-0001") == seq
        view = await store.message(message_id)
        assert view is not None
        assert [e.kind for e in view.events if e.target == "portal"] == ["delivered"]


async def test_a_dossier_cursor_ends_on_its_newest_state_whatever_order_deliveries_are_recorded(
    store: MessageStore,
) -> None:
    dossier = f"G{uuid.uuid4().hex[:8]}.1-261126-0001"
    messages = [await _accept(store, dossier, ["portal"]) for _ in range(6)]
    newest = max(seq for _, seq in messages)

    shuffled = [messages[i] for i in (3, 0, 5, 1, 4, 2)]
    left = await asyncio.gather(
        *(store.mark_delivered(m, "portal", attempt=1, dossier_code=dossier, seq=seq) for m, seq in shuffled)
    )
    assert await store.cursor("portal", dossier) == newest
    # Each caller learns the cursor its write left: never older than its own state.
    assert all(cursor is not None and cursor >= seq for cursor, (_, seq) in zip(left, shuffled, strict=True))

    oldest_id, oldest_seq = messages[0]
    # A worker that delivered an old state learns that a newer one was delivered meanwhile.
    assert await store.mark_delivered(oldest_id, "portal", attempt=2, dossier_code=dossier, seq=oldest_seq) == newest
    assert await store.cursor("portal", dossier) == newest


async def test_a_write_that_fails_fails_only_for_its_own_caller(store: MessageStore) -> None:
    run = uuid.uuid4().hex[:8]
    good = [await _accept(store, f"G{run}.{i}-261126-0001", ["portal"]) for i in range(5)]
    unknown_message = "00000000-0000-4000-8000-000000000000"  # not in the store: its timeline row cannot exist

    results = await asyncio.gather(
        *(store.mark_delivered(m, "portal", attempt=1, dossier_code=None, seq=None) for m, _ in good[:3]),
        store.mark_delivered(unknown_message, "portal", attempt=1, dossier_code=None, seq=None),
        *(store.mark_delivered(m, "portal", attempt=1, dossier_code=None, seq=None) for m, _ in good[3:]),
        return_exceptions=True,
    )

    assert [type(r).__name__ for r in results] == ["NoneType"] * 3 + [IntegrityError.__name__] + ["NoneType"] * 2
    for message_id, _ in good:
        assert (await _states(store, message_id))["portal"] == (DeliveryState.DELIVERED, 1)


async def test_concurrent_accepts_get_their_own_rows_in_order_and_idempotency_keys_still_hold(
    store: MessageStore,
) -> None:
    run = uuid.uuid4().hex[:8]

    async def accept(i: int, key: str | None) -> tuple[str, int, bool, str]:
        message_id = new_message_id()
        view, created = await store.accept(
            message_type="dossier.upserted",
            source="onestop",
            dossier_code=f"G{run}.{i}-261126-0001",
            payload={"MaHoSo": f"G{run}.{i}-261126-0001", "n": i},
            targets=[("portal", "dossier-sync"), ("ministry", "dossier-progress")],
            idempotency_key=key,
            message_id=message_id,
        )
        return view.envelope.id, view.envelope.seq, created, message_id

    # 40 new messages and 10 keys each sent twice, all at once: the repeats land in the same batches.
    calls = [accept(i, None) for i in range(40)] + [accept(100 + i % 10, f"{run}-key-{i % 10}") for i in range(20)]
    results = await asyncio.gather(*calls)

    fresh = results[:40]
    assert all(created and stored_id == asked_id for stored_id, _, created, asked_id in fresh)
    seqs = [seq for _, seq, _, _ in fresh]
    assert seqs == sorted(seqs), "seq follows the order the calls were made in"
    assert len(set(seqs)) == 40
    for stored_id, seq, _, _ in fresh[:5]:
        view = await store.message(stored_id)
        assert view is not None
        assert view.envelope.seq == seq
        assert {d.target: d.state for d in view.deliveries} == {
            "portal": DeliveryState.PENDING,
            "ministry": DeliveryState.PENDING,
        }
        assert [e.kind for e in view.events] == ["accepted"]

    keyed = results[40:]
    for k in range(10):
        first, second = keyed[k], keyed[k + 10]
        assert first[0] == second[0], "both sends of one key name the same stored message"
        assert sorted([first[2], second[2]]) == [False, True], "exactly one of them created it"


async def test_a_publish_recorded_without_waiting_is_written_soon_and_before_the_store_closes(
    database_url: str,
) -> None:
    store = MessageStore.open(database_url)
    await store.migrate()
    run = uuid.uuid4().hex[:8]
    messages = [await _accept(store, f"G{run}.{i}-261126-0001", ["portal"]) for i in range(30)]
    for message_id, _ in messages:
        await store.mark_published(message_id, ["portal"], wait=False)  # returns before the write
    await store.aclose()  # waits for the queued writes

    reopened = MessageStore.open(database_url)
    try:
        for message_id, _ in messages:
            assert (await _states(reopened, message_id))["portal"] == (DeliveryState.ACCEPTED, 0)
    finally:
        await reopened.aclose()


async def test_the_sqlite_fast_read_answers_exactly_as_the_usual_read(tmp_path: Path) -> None:
    store = MessageStore.open(f"sqlite:///{tmp_path / 'hub.db'}")
    await store.migrate()
    try:
        dossier = "G1.1-261126-0001"
        message_id, seq = await _accept(store, dossier, ["portal", "ministry"])
        await store.mark_delivered(message_id, "portal", attempt=2, dossier_code=dossier, seq=seq)
        await store.mark_retrying(message_id, "ministry", attempt=1, delay_seconds=5, reason="HTTP 503.")
        asked = [
            (message_id, "portal", dossier),
            (message_id, "ministry", None),
            ("no-such-message", "portal", dossier),
        ]

        fast = [await store._delivery_read(*a) for a in asked]
        assert store._loop_reader is not None, "the fast path was taken"
        assert fast[0][0] is not None
        assert fast[0][0].state == DeliveryState.DELIVERED
        assert fast[0][0].delivered_at is not None
        assert fast[0][0].delivered_at.tzinfo is not None
        assert fast[0][1] == seq
        assert fast[1][0] is not None
        assert fast[1][0].next_attempt_at is not None
        assert fast[2] == (None, None)

        store._sqlite_file = None  # the usual read through SQLAlchemy
        assert [await store._delivery_read(*a) for a in asked] == fast
    finally:
        await store.aclose()


async def test_an_accept_waits_for_another_process_s_write_lock_in_the_writer_thread_not_the_event_loop(
    tmp_path: Path,
) -> None:
    """On SQLite the accepts are written in the event loop's thread. When another process holds the file's
    write lock (a `hub worker` beside a `hub ingress` on one file), that write gives up at once and goes to
    the writer thread, which waits for the lock: the event loop keeps running meanwhile."""
    path = tmp_path / "hub.db"
    store = MessageStore.open(f"sqlite:///{path}")
    await store.migrate()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await _accept(store, "G1.1-261202-0001", ["portal"])  # the usual case: inline
        writer = store._writer
        assert writer is not None
        assert writer.inline_fallbacks == 0

        other.execute("BEGIN IMMEDIATE")  # "another process" takes the write lock
        accept = asyncio.create_task(_accept(store, "G1.1-261202-0002", ["portal"]))
        started = time.perf_counter()
        for _ in range(20):  # 0.4 s of short sleeps: each needs the event loop to run
            await asyncio.sleep(0.02)
        looped = time.perf_counter() - started
        assert not accept.done(), "the accept should be waiting for the other connection's lock"
        other.execute("COMMIT")
        message_id, _seq = await asyncio.wait_for(accept, 10)
    finally:
        other.close()
        await store.aclose()
    assert looped < 5, f"the event loop was held for {looped:.1f} s"
    assert writer.inline_fallbacks == 1
    reopened = MessageStore.open(f"sqlite:///{path}")
    try:
        assert await reopened.message(message_id) is not None
    finally:
        await reopened.aclose()


@pytest.mark.parametrize("steady_load", [False, True], ids=["beside the writes", "in the write turn"])
async def test_the_wal_of_writes_made_in_the_event_loop_is_checkpointed_by_the_writer_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steady_load: bool
) -> None:
    """The event loop's connection never checkpoints (that would make the loop wait for the disk), so the
    store has the writer thread do it every so often, beside the writes; without that the WAL would only
    grow. When the WAL holds too many frames anyway (steady load, here a limit of 1), the checkpoint runs
    in the write turn."""
    monkeypatch.setattr(writer_thread, "CHECKPOINT_AFTER", 200)
    if steady_load:
        monkeypatch.setattr(writer_thread, "WAL_FRAMES_LIMIT", 1)
    path = tmp_path / "hub.db"
    store = MessageStore.open(f"sqlite:///{path}")
    await store.migrate()
    assert store._writer is not None
    in_turn = 0
    checkpoint = store._writer.checkpoint

    async def counted() -> None:
        nonlocal in_turn
        in_turn += 1
        await checkpoint()

    monkeypatch.setattr(store._writer, "checkpoint", counted)
    try:
        for round_ in range(30):
            accepted = await asyncio.gather(
                *(_accept(store, f"G1.{round_}-261202-{i:04d}", ["portal"]) for i in range(20))
            )
            await asyncio.gather(*(store.mark_published(message_id, ["portal"]) for message_id, _ in accepted))
        checkpoints = store._writer.checkpoints
        await store.drain_writes()
        # (busy, frames in the WAL, frames copied), read while the store is open (the last connection
        # to close checkpoints and removes the WAL): the frames written since the WAL last started over.
        with contextlib.closing(sqlite3.connect(path)) as connection:
            _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        await store.aclose()
    assert checkpoints >= 3
    assert frames < 400, f"{frames} frames of WAL since the last checkpoint: the WAL was not started over"
    assert (in_turn > 0) == steady_load


async def test_the_accepts_linger_for_company_only_under_load() -> None:
    """A lone accept is written at once; once a batch held several, the next waits the linger so that
    others can share its transaction."""
    batches: list[list[int]] = []

    async def write(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        return list(items)

    commits: GroupCommit[int, int] = GroupCommit(write, linger=0.5, linger_under_load_only=True)
    started = time.perf_counter()
    assert await commits.submit(1) == 1
    assert time.perf_counter() - started < 0.4, "a lone write does not linger"
    assert list(await asyncio.gather(*(commits.submit(i) for i in (2, 3, 4)))) == [2, 3, 4]
    assert batches == [[1], [2, 3, 4]]
    lingering = asyncio.ensure_future(commits.submit(5))
    await asyncio.sleep(0.1)
    late = asyncio.ensure_future(commits.submit(6))  # joins the lingering batch
    assert list(await asyncio.gather(lingering, late)) == [5, 6]
    assert batches[-1] == [5, 6]


async def test_an_overdue_retry_is_claimed_by_one_caller_only(store: MessageStore) -> None:
    """Every worker process of a target looks for overdue retries; the claim lets one send it again."""
    run = uuid.uuid4().hex[:8]
    overdue, _ = await _accept(store, f"G{run}.1-261126-0001", ["portal"])
    not_yet, _ = await _accept(store, f"G{run}.2-261126-0001", ["portal"])
    await store.mark_retrying(overdue, "portal", attempt=1, delay_seconds=-20, reason="HTTP 503.")
    await store.mark_retrying(not_yet, "portal", attempt=1, delay_seconds=1, reason="HTTP 503.")
    wait = timedelta(seconds=15)

    assert [o.envelope.id for o in await store.overdue_retries(wait, targets=["portal"])] == [overdue]
    claims = await asyncio.gather(*(store.claim_overdue_retry(overdue, "portal", overdue_by=wait) for _ in range(4)))
    assert sorted(claims) == [False, False, False, True]
    assert await store.overdue_retries(wait, targets=["portal"]) == []
    assert not await store.claim_overdue_retry(not_yet, "portal", overdue_by=wait)


async def _write_the_grouped_records(path: Path, *, plain: bool) -> dict[str, list[tuple[Any, ...]]]:
    store = MessageStore.open(f"sqlite:///{path}")
    await store.migrate()
    if not plain:
        store._execute_many = core_execute_many  # type: ignore[method-assign]
    try:
        views = await asyncio.gather(
            *(
                store.accept(
                    message_type="dossier.upserted",
                    source="onestop",
                    dossier_code=f"G1.1-261126-000{n}",
                    payload={"MaHoSo": f"G1.1-261126-000{n}", "ChuHoSo": "Lê Thị Hồng", "Gia": n, "x": None},
                    targets=[("portal", "dossier-sync"), ("ministry", "dossier-sync")],
                    idempotency_key=f"key-{n}" if n % 2 else None,
                    message_id=f"00000000-0000-4000-8000-00000000000{n}",
                )
                for n in range(1, 6)
            )
        )
        for view, _ in views:
            await store.mark_published(view.envelope.id, ["portal", "ministry"])
        await asyncio.gather(
            *(
                store.mark_delivered(view.envelope.id, "portal", attempt=2, dossier_code=None, seq=None)
                for view, _ in views
            )
        )
    finally:
        await store.aclose()
    # Every column but the generated keys, whose order depends on which requests shared a batch.
    queries = {
        "messages": "SELECT id, type, source, dossier_code, idempotency_key, payload, accepted_at FROM messages",
        "deliveries": "SELECT * FROM deliveries",
        "delivery_events": "SELECT message_id, target, kind, attempt, detail, actor, at FROM delivery_events",
        "seqs": "SELECT seq FROM messages",
    }
    with sqlite3.connect(path) as raw:
        return {name: sorted(raw.execute(sql).fetchall(), key=repr) for name, sql in queries.items()}


async def test_the_grouped_writes_as_plain_sql_store_exactly_what_sqlalchemy_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same accept, published and delivered records, written once as plain SQL (SQLite's writer
    thread) and once through SQLAlchemy Core, leave the same values in every column."""
    monkeypatch.setattr(_store, "_now", lambda: datetime(2026, 12, 1, 16, 5, 7, 123456, tzinfo=UTC))
    plain = await _write_the_grouped_records(tmp_path / "plain.db", plain=True)
    core = await _write_the_grouped_records(tmp_path / "core.db", plain=False)
    assert len(plain["messages"]) == 5
    assert len(plain["deliveries"]) == 10
    assert {row[3] for row in plain["deliveries"]} == {DeliveryState.DELIVERED, DeliveryState.ACCEPTED}
    assert plain["seqs"] == [(1,), (2,), (3,), (4,), (5,)]
    assert plain == core
