"""Fixtures shared by the test tiers: a real database per run, the mock portal, a running hub."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from mocks._serve import serve_app
from mocks.national_portal.app import create_app as create_portal_app
from tests.support.harness import (
    CREATED_NAMESPACES,
    MINISTRY_KEY,
    ONESTOP_KEY,
    RunningHub,
    running_hub,
    write_routes,
)
from tests.support.processes import delete_namespace_queues

PG_ADMIN_DSN = os.environ.get("HUB_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
#: CI sets this: a missing PostgreSQL or Chromium is then a failure, not a skip.
REQUIRE_SERVICES = os.environ.get("HUB_TEST_REQUIRE_SERVICES") == "1"


def _unavailable(what: str, how: str) -> None:
    message = f"{what} is not available here ({how})."
    if REQUIRE_SERVICES:
        pytest.fail(message + " HUB_TEST_REQUIRE_SERVICES=1 makes this a failure.")
    pytest.skip(message + " These tests were skipped; CI runs them.")


@pytest.fixture(scope="session", autouse=True)
def _no_queues_left_behind() -> Iterator[None]:
    """At the end of the session, delete whatever queues of this session's namespaces are left."""
    yield
    if CREATED_NAMESPACES:
        try:
            delete_namespace_queues(*sorted(CREATED_NAMESPACES))
        except Exception as exc:
            print(f"Could not delete the test queues of {len(CREATED_NAMESPACES)} namespaces: {exc}")


@pytest.fixture(autouse=True)
def _system_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_SYSTEM_KEY_ONESTOP", ONESTOP_KEY)
    monkeypatch.setenv("HUB_SYSTEM_KEY_MINISTRY", MINISTRY_KEY)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    name = f"hub_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _unavailable("PostgreSQL", f"{PG_ADMIN_DSN}: {exc}".splitlines()[0])
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/hub.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def portal_url() -> Iterator[str]:
    with serve_app(create_portal_app()) as url:
        yield url


@pytest.fixture
def portal(portal_url: str) -> Iterator[httpx.Client]:
    """A client of the mock portal's control API, reset before and after each test."""
    with httpx.Client(base_url=portal_url, timeout=10) as client:
        client.delete("/_mock/faults")
        client.delete("/_mock/calls")
        yield client
        client.delete("/_mock/faults")


@pytest.fixture
def routes_dir(tmp_path: Path, portal_url: str) -> Path:
    return write_routes(tmp_path / "routes", portal_url)


@pytest.fixture
async def hub(database_url: str, routes_dir: Path, portal_url: str, portal: httpx.Client) -> AsyncIterator[RunningHub]:
    async with running_hub(database_url=database_url, routes_dir=routes_dir, portal_url=portal_url) as running:
        yield running


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's Chromium for browser tests (``apt-get install chromium``); never a downloaded browser."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _unavailable("Chromium", "install it with `apt-get install chromium`")
    return str(path)


#: Flags for headless Chromium on a machine without a network or a GPU.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
