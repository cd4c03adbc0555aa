"""deploy/backup/lgsp-hub-backup and lgsp-hub-restore, run as an operator runs them (docs/deploy.md,
"Restore drill"): a store the hub's own code wrote is backed up while it is open, restored into a
new database, and read back with the same rows."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hub.envelope import new_message_id
from hub.store import MessageStore
from tests.conftest import PG_ADMIN_DSN, _unavailable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "deploy" / "backup" / "lgsp-hub-backup"
RESTORE = ROOT / "deploy" / "backup" / "lgsp-hub-restore"
#: The tables a message and its deliveries live in.
TABLES = ("messages", "deliveries", "delivery_events", "dossier_cursors")


def _run(script: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "LGSP_HUB_PYTHON": sys.executable, **(env or {})}
    environment.pop("HUB_DATABASE_URL", None)
    return subprocess.run(  # our own scripts
        [str(script), *args], capture_output=True, text=True, env=environment, timeout=120, check=False
    )


async def _write_messages(store: MessageStore, count: int) -> list[str]:
    """Accepted messages towards two targets; half of them published and delivered to one."""
    run = uuid.uuid4().hex[:8]
    ids = []
    for i in range(count):
        dossier = f"B{run}.{i}-261126-0001"
        view, _ = await store.accept(
            message_type="dossier.upserted",
            source="onestop",
            dossier_code=dossier,
            payload={"MaHoSo": dossier, "ChuHoSo": "Nguyễn Văn A", "TrangThaiHoSo": 1},
            targets=[("national-portal", "dossier-sync"), ("ministry", "dossier-sync")],
            idempotency_key=f"{dossier}:1",
            message_id=new_message_id(),
        )
        if i % 2 == 0:
            await store.mark_published(view.envelope.id, ["national-portal", "ministry"])
            await store.mark_delivered(
                view.envelope.id, "national-portal", attempt=1, dossier_code=dossier, seq=view.envelope.seq
            )
        ids.append(view.envelope.id)
    await store.drain_writes()
    return ids


def _sqlite_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {table: connection.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall() for table in TABLES}  # noqa: S608
    finally:
        connection.close()


def _sqlite_integrity(path: Path) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()


@pytest.fixture(params=["sqlite3 program", "Python's sqlite3 module"])
def sqlite_tool(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that makes the scripts use the sqlite3 program, or Python's module without it."""
    if request.param == "sqlite3 program":
        if shutil.which("sqlite3") is None:
            pytest.skip("The sqlite3 program is not installed (apt-get install sqlite3); the Python path is tested.")
        return {}
    return {"LGSP_HUB_SQLITE3": ""}


async def test_a_sqlite_store_backed_up_while_open_is_restored_with_the_same_rows(
    tmp_path: Path, sqlite_tool: dict[str, str]
) -> None:
    source = tmp_path / "var" / "hub.db"
    backups = tmp_path / "backups"
    store = MessageStore.open(f"sqlite+aiosqlite:///{source}")
    try:
        await store.migrate()
        ids = await _write_messages(store, 24)
        # The latest commits are still in the write-ahead log: a copy of hub.db alone would miss them.
        wal = source.with_name("hub.db-wal")
        assert wal.exists()
        assert wal.stat().st_size > 0
        result = _run(BACKUP, "--database-url", f"sqlite+aiosqlite:///{source}", "--dir", str(backups), env=sqlite_tool)
        assert result.returncode == 0, result.stderr
        expected = _sqlite_rows(source)
    finally:
        await store.aclose()
    [backup] = backups.glob("lgsp-hub-*.sqlite")
    assert f"wrote {backup}" in result.stdout
    assert not list(backups.glob("*.partial"))

    target = tmp_path / "restored" / "hub.db"
    restored = _run(RESTORE, str(backup), f"sqlite+aiosqlite:///{target}", env=sqlite_tool)
    assert restored.returncode == 0, restored.stderr
    assert _sqlite_integrity(target) == [("ok",)]
    rows = _sqlite_rows(target)
    assert rows == expected
    assert len(rows["messages"]) == 24
    assert len(rows["deliveries"]) == 48

    # The hub opens the restored store and finds its messages.
    store = MessageStore.open(f"sqlite+aiosqlite:///{target}")
    try:
        await store.migrate()
        view = await store.message(ids[0])
        assert view is not None
        assert {d.target: d.state for d in view.deliveries}["national-portal"] == "delivered"
    finally:
        await store.aclose()


def _small_sqlite_store(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE messages (id TEXT PRIMARY KEY)")
        connection.execute("INSERT INTO messages VALUES ('m1')")
    connection.close()


def test_restore_refuses_a_target_that_holds_a_database_unless_forced(tmp_path: Path) -> None:
    source = tmp_path / "hub.db"
    _small_sqlite_store(source)
    backups = tmp_path / "backups"
    assert _run(BACKUP, "--database-url", f"sqlite:///{source}", "--dir", str(backups)).returncode == 0
    [backup] = backups.glob("lgsp-hub-*.sqlite")
    target = tmp_path / "live.db"
    _small_sqlite_store(target)
    Path(f"{target}-wal").write_bytes(b"the old database's log")
    connection = sqlite3.connect(target)
    with connection:
        connection.execute("INSERT INTO messages VALUES ('written after the backup')")
    connection.close()

    refused = _run(RESTORE, str(backup), str(target))
    assert refused.returncode == 1
    assert "already holds a database" in refused.stderr
    assert "--force" in refused.stderr
    assert _sqlite_rows_of(target) == [("m1",), ("written after the backup",)]

    forced = _run(RESTORE, "--force", str(backup), str(target))
    assert forced.returncode == 0, forced.stderr
    assert _sqlite_rows_of(target) == [("m1",)]
    assert not Path(f"{target}-wal").exists()
    assert not Path(f"{target}.restoring").exists()


def _sqlite_rows_of(path: Path) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT id FROM messages ORDER BY rowid").fetchall()
    finally:
        connection.close()


def test_backups_older_than_the_retention_are_deleted_and_the_others_kept(tmp_path: Path) -> None:
    source = tmp_path / "hub.db"
    _small_sqlite_store(source)
    backups = tmp_path / "backups"
    backups.mkdir()
    day = 86_400
    files = {
        "old": (backups / "lgsp-hub-20260101T023000Z.sqlite", 20 * day),
        "old dump": (backups / "lgsp-hub-20260102T023000Z.pgdump", 15 * day),
        "recent": (backups / "lgsp-hub-20260120T023000Z.sqlite", 13 * day),
        "not a backup": (backups / "notes.txt", 100 * day),
    }
    for path, age in files.values():
        path.write_bytes(b"x")
        os.utime(path, (time.time() - age, time.time() - age))

    result = _run(BACKUP, "--database-url", f"sqlite:///{source}", "--dir", str(backups), "--keep-days", "14")
    assert result.returncode == 0, result.stderr
    assert "removed 2 backup(s) older than 14 day(s)" in result.stdout
    assert not files["old"][0].exists()
    assert not files["old dump"][0].exists()
    assert files["recent"][0].exists()
    assert files["not a backup"][0].exists()
    assert len(list(backups.glob("lgsp-hub-*.sqlite"))) == 2


def test_a_failed_backup_says_why_and_leaves_no_file(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    missing = _run(BACKUP, "--database-url", f"sqlite:///{tmp_path}/nowhere/hub.db", "--dir", str(backups))
    assert missing.returncode == 1
    assert missing.stderr.startswith("lgsp-hub-backup: the store file ")
    assert "does not exist" in missing.stderr
    assert not (tmp_path / "nowhere").exists()
    assert list(backups.iterdir()) == []

    retention = _run(BACKUP, "--keep-days", "0", "--dir", str(backups))
    assert retention.returncode == 1
    assert "--keep-days must be a whole number of days, at least 1" in retention.stderr


# ------------------------------------------------------------------------------------ PostgreSQL


@pytest.fixture(scope="module")
def postgres_client() -> None:
    for program in ("pg_dump", "pg_restore", "psql"):
        if shutil.which(program) is None:
            _unavailable(program, "install the PostgreSQL client: apt-get install postgresql-client")


@pytest.fixture
def empty_database(postgres_url: str) -> Iterator[str]:
    """Another fresh database, to restore into; dropped afterwards."""
    name = f"hub_restore_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{postgres_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        return {table: _count(conn, table) for table in TABLES}


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    assert row is not None
    return int(row[0])


async def test_a_postgresql_store_is_restored_into_a_fresh_database_with_the_same_rows(
    postgres_client: None, postgres_url: str, empty_database: str, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    store = MessageStore.open(postgres_url)
    try:
        await store.migrate()
        ids = await _write_messages(store, 20)
        expected = _pg_counts(postgres_url)
        result = _run(BACKUP, "--database-url", postgres_url, "--dir", str(backups))
        assert result.returncode == 0, result.stderr
    finally:
        await store.aclose()
    [backup] = backups.glob("lgsp-hub-*.pgdump")
    assert f"wrote {backup}" in result.stdout
    assert expected["messages"] >= 20

    restored = _run(RESTORE, str(backup), empty_database)
    assert restored.returncode == 0, restored.stderr
    assert _pg_counts(empty_database) == expected

    store = MessageStore.open(empty_database)
    try:
        await store.migrate()  # the restored schema is at the head revision: nothing to do
        view = await store.message(ids[-2])
        assert view is not None
        assert {d.target: d.state for d in view.deliveries}["national-portal"] == "delivered"
    finally:
        await store.aclose()

    refused = _run(RESTORE, str(backup), empty_database)
    assert refused.returncode == 1
    assert "already holds" in refused.stderr
    forced = _run(RESTORE, "--force", str(backup), empty_database)
    assert forced.returncode == 0, forced.stderr
    assert _pg_counts(empty_database) == expected


def test_a_failed_pg_dump_says_why_and_leaves_no_file(postgres_client: None, postgres_url: str, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    missing = f"{postgres_url.rsplit('/', 1)[0]}/hub_no_such_database_{uuid.uuid4().hex[:8]}"
    result = _run(BACKUP, "--database-url", missing, "--dir", str(backups))
    assert result.returncode == 1
    assert "lgsp-hub-backup: pg_dump of postgresql://" in result.stderr
    assert "nothing was written" in result.stderr
    assert list(backups.iterdir()) == []
