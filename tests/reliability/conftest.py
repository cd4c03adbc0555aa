"""Fixtures of the reliability suite: the hub as separate processes on PostgreSQL and RabbitMQ.

Sizes: the default run (what CI runs) is the quick subset, a few hundred messages per fault and
short outages. ``pytest tests/reliability --full`` (or ``HUB_RELIABILITY=full``) runs a few
thousand messages per fault and a 60 s target outage. ``HUB_RELIABILITY_MESSAGES=<n>`` sets the
number of messages per fault for either size.

Every test prints its figures; the run's figures are also listed at the end of the pytest output
and written to ``var/reliability/last-quick.json`` or ``last-full.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pika
import psycopg
import pytest

from hub.broker import Topology
from mocks._serve import serve_app
from mocks.national_portal.app import create_app as create_portal_app
from tests.conftest import PG_ADMIN_DSN, REQUIRE_SERVICES
from tests.reliability.reconciliation import Figures, connect
from tests.support.harness import RABBITMQ_URL
from tests.support.processes import ROOT, HubEnvironment, HubProcess

TARGET = "national-portal"
FIGURES_DIR = ROOT / "var" / "reliability"
_figures_key = pytest.StashKey[list[Figures]]()


def unavailable(what: str, how: str) -> None:
    """Skip (on a developer's machine) or fail (in CI, ``HUB_TEST_REQUIRE_SERVICES=1``) for want of a service."""
    message = f"{what} is not available here ({how})."
    if REQUIRE_SERVICES:
        pytest.fail(message + " HUB_TEST_REQUIRE_SERVICES=1 makes this a failure.")
    pytest.skip(message + " These tests were skipped; CI runs them.")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        default=False,
        help="Reliability suite: a few thousand messages per fault and a 60 s target outage (default: quick).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_figures_key] = []


@dataclass(frozen=True)
class Scale:
    """How big each fault's stream is and how long its outages last."""

    full: bool
    messages: int
    target_outage_seconds: float
    settle_timeout: float

    @property
    def name(self) -> str:
        return "full" if self.full else "quick"


@pytest.fixture(scope="session")
def scale(pytestconfig: pytest.Config) -> Scale:
    full = bool(pytestconfig.getoption("--full")) or os.environ.get("HUB_RELIABILITY", "").lower() == "full"
    messages = int(os.environ.get("HUB_RELIABILITY_MESSAGES", "3000" if full else "360"))
    return Scale(
        full=full,
        messages=messages,
        target_outage_seconds=60.0 if full else 6.0,
        settle_timeout=300.0 if full else 90.0,
    )


@pytest.fixture
def record_figures(pytestconfig: pytest.Config, scale: Scale) -> Iterator[list[Figures]]:
    """Figures a test appends here are printed now and listed in the run's summary."""
    recorded: list[Figures] = []
    yield recorded
    for figures in recorded:
        figures.notes.setdefault("scale", scale.name)
        print(figures.line())
        pytestconfig.stash[_figures_key].append(figures)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    recorded = config.stash.get(_figures_key, [])
    if not recorded:
        return
    terminalreporter.section("reliability figures")
    terminalreporter.write_line("fault: sent accepted delivered superseded dlq duplicates lost")
    for figures in recorded:
        terminalreporter.write_line(figures.line())
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    size = str(recorded[0].notes.get("scale", "quick"))
    path = FIGURES_DIR / f"last-{size}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "scale": size,
                "commit": commit,
                "figures": [f.as_dict() for f in recorded],
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    terminalreporter.write_line(f"written to {path.relative_to(ROOT)}")


@dataclass(frozen=True)
class ScratchDatabase:
    name: str
    url: str


@pytest.fixture
def database() -> Iterator[ScratchDatabase]:
    """A fresh PostgreSQL database for one test (fault 4 cuts only its connections)."""
    name = f"hub_rel_{uuid.uuid4().hex[:10]}"
    try:
        with connect(PG_ADMIN_DSN) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", f"{PG_ADMIN_DSN}: {exc}".splitlines()[0])
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield ScratchDatabase(name, f"{base}/{name}")
    with connect(PG_ADMIN_DSN) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def portal_url() -> Iterator[str]:
    """A mock national portal of this test alone (its calls and stats are this test's)."""
    with serve_app(create_portal_app()) as url:
        yield url


@pytest.fixture
def portal(portal_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=portal_url, timeout=30) as client:
        yield client


def _seconds(tier: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for suffix in ("ms", "s", "m"):
        if tier.endswith(suffix):
            return float(tier.removesuffix(suffix)) * units[suffix]
    raise ValueError(tier)


@dataclass
class ReliableHub:
    """One hub under test: an ingress process and worker processes, started as a user starts them."""

    environment: HubEnvironment
    backoff: list[str]
    ingress: HubProcess | None = None
    workers: list[HubProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.environment.url

    @property
    def target_queue(self) -> str:
        return Topology(self.environment.namespace).target_queue(TARGET)

    @property
    def dlq(self) -> str:
        return Topology(self.environment.namespace).dlq(TARGET)

    def start_ingress(self) -> HubProcess:
        self.ingress = HubProcess(self.environment, "ingress").start()
        self.ingress.wait_ready(timeout=60)
        return self.ingress

    def start_worker(self) -> HubProcess:
        worker = HubProcess(self.environment, "worker", "--target", TARGET).start()
        worker.wait_log("worker_started", timeout=60)
        self.workers.append(worker)
        return worker

    def processes(self) -> list[HubProcess]:
        return [p for p in (self.ingress, *self.workers) if p is not None]

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()[-tail:]}" for p in self.processes())

    def queue_names(self) -> list[str]:
        topology = Topology(self.environment.namespace)
        retry = [topology.retry_queue(TARGET, _seconds(tier)) for tier in self.backoff]
        return [topology.target_queue(TARGET), topology.dlq(TARGET), *retry]

    def delete_queues(self) -> None:
        with contextlib.suppress(Exception):
            connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
            try:
                for name in self.queue_names():
                    channel = connection.channel()
                    with contextlib.suppress(Exception):
                        channel.queue_delete(name)
                channel = connection.channel()
                with contextlib.suppress(Exception):
                    channel.exchange_delete(Topology(self.environment.namespace).deliver_exchange)
            finally:
                connection.close()


def write_reliability_routes(folder: Path, portal_url: str, *, backoff: list[str], attempts: int) -> Path:
    """The production route shapes (latest-state dossiers, batched progress) with the given retry policy."""
    folder.mkdir(parents=True, exist_ok=True)
    tiers = ", ".join(backoff)
    (folder / "portal.yaml").write_text(
        textwrap.dedent(
            f"""
            systems:
              - id: onestop
                key_env: HUB_SYSTEM_KEY_ONESTOP
                allowed_types: [dossier.upserted, dossier.progress]
            targets:
              - id: {TARGET}
                adapter: national_portal
                config:
                  base_url: {portal_url}
                  client_id: test-client
                  client_secret: test-secret-not-real
                  timeout_seconds: 5
            routes:
              - name: dossier-sync
                type: dossier.upserted
                schema: dossier.upserted/v1
                ordering: latest-state
                targets: [{TARGET}]
                retry: {{attempts: {attempts}, backoff: [{tiers}]}}
              - name: dossier-progress
                type: dossier.progress
                schema: dossier.progress/v1
                targets: [{TARGET}]
                retry: {{attempts: {attempts}, backoff: [{tiers}]}}
            """
        ),
        encoding="utf-8",
    )
    return folder


class HubFactory:
    def __init__(self, tmp_path: Path, database: ScratchDatabase, portal_url: str) -> None:
        self.tmp_path = tmp_path
        self.database = database
        self.portal_url = portal_url
        self.hubs: list[ReliableHub] = []

    def __call__(
        self,
        *,
        portal_url: str | None = None,
        backoff: list[str] | None = None,
        attempts: int = 10,
        prefetch: int = 32,
        extra: dict[str, str] | None = None,
    ) -> ReliableHub:
        backoff = backoff or ["500ms", "2s", "5s"]
        routes = write_reliability_routes(
            self.tmp_path / "routes", portal_url or self.portal_url, backoff=backoff, attempts=attempts
        )
        environment = HubEnvironment(
            database_url=self.database.url,
            routes_dir=routes,
            logs_dir=self.tmp_path / "logs",
            extra={"HUB_PREFETCH": str(prefetch), "HUB_LOG_LEVEL": "INFO", **(extra or {})},
        )
        hub = ReliableHub(environment, backoff)
        self.hubs.append(hub)
        return hub

    def close(self) -> None:
        for hub in self.hubs:
            for process in hub.processes():
                process.stop(timeout=15)
            hub.delete_queues()


@pytest.fixture
def make_hub(tmp_path: Path, database: ScratchDatabase, portal_url: str) -> Iterator[HubFactory]:
    factory = HubFactory(tmp_path, database, portal_url)
    yield factory
    factory.close()
