"""The audit trail on SQLite and PostgreSQL, and `hub audit --since ... --system ...`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from hub.audit import AuditFacts, AuditLog
from hub.cli import app
from hub.store import MessageStore

pytestmark = pytest.mark.integration


async def _write(database_url: str) -> None:
    store = MessageStore.open(database_url)
    try:
        await store.migrate()
        audit = AuditLog(store.engine)
        old = datetime.now(UTC) - timedelta(days=3)
        await audit.record(
            request_id="r-old", kind="population.lookup", route="population-lookup", system="onestop",
            facts=AuditFacts(official="cb.old", purpose="1.1", subject="000190000001"), outcome="found", at=old,
        )  # fmt: skip
        await audit.record(
            request_id="r-1", kind="population.lookup", route="population-lookup", system="onestop",
            facts=AuditFacts(official="cb.01", agency="H15", purpose="1.000123", subject="000185000002"),
            outcome="not_found",
        )  # fmt: skip
        await audit.record(
            request_id="r-2", kind="population.verify", route="population-verify", system="ministry",
            facts=AuditFacts(official="cb.02", purpose="2.2", subject="000201000003"), outcome="timeout",
            detail="Request r-2 for 000201000003 got no answer",
        )  # fmt: skip
    finally:
        await store.aclose()


def test_hub_audit_lists_records_by_time_and_system(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(_write(database_url))
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    runner = CliRunner()

    result = runner.invoke(app, ["audit", "--since", "1d", "--system", "onestop"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert "population.lookup  official=cb.01  purpose=1.000123  subject=00********02  outcome=not_found" in lines[0]
    assert lines[-1].startswith("1 audit record(s) from system onestop since ")

    everything = runner.invoke(app, ["audit", "--since", "7d", "--json"])
    records = [json.loads(line) for line in everything.output.strip().splitlines()]
    assert [r["request_id"] for r in records] == ["r-old", "r-1", "r-2"]
    assert records[2]["detail"] == "Request r-2 for 00********03 got no answer"
    assert "000201000003" not in everything.output
    assert "000190000001" not in everything.output

    bad = runner.invoke(app, ["audit", "--since", "last week"])
    assert bad.exit_code == 2
    assert "is not a time" in bad.output
