"""``hub audit``: list who looked up whom in the population database, and who logged in with VNeID."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from hub.audit import AuditEntry, AuditLog
from hub.errors import StoreUnavailableError
from hub.settings import HubSettings
from hub.store import MessageStore

__all__ = ["audit_app", "parse_since"]

LOCAL_TIME = ZoneInfo("Asia/Ho_Chi_Minh")
_RELATIVE = re.compile(r"^\s*(\d+)\s*(m|h|d)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}

audit_app = typer.Typer(
    help="The audit trail of identity lookups and logins (population database, VNeID).",
    invoke_without_command=True,
)


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """``24h``, ``90m``, ``7d`` (ago), or a date/time such as ``2026-11-01`` or ``2026-11-01T08:00``
    (Vietnam time unless it carries an offset). Raises ValueError with a sentence."""
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(value)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is not a time; write 24h, 90m or 7d (ago), or a date like 2026-11-01 or 2026-11-01T08:00."
        ) from None
    return parsed.replace(tzinfo=LOCAL_TIME) if parsed.tzinfo is None else parsed


def _line(entry: AuditEntry) -> str:
    local = entry.at.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{local}  {entry.system}  {entry.kind}  official={entry.official or '-'}  purpose={entry.purpose or '-'}  "
        f"subject={entry.subject or '-'}  outcome={entry.outcome}  request={entry.request_id}"
    )


@audit_app.callback()
def audit(
    since: Annotated[str, typer.Option(help="From: 24h, 7d (ago) or a date/time, e.g. 2026-11-01 (Vietnam time).")],
    until: Annotated[str | None, typer.Option(help="Up to (same forms as --since); default now.")] = None,
    system: Annotated[str | None, typer.Option(help="Only this calling system (e.g. onestop).")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this type, e.g. population.lookup or identity.login.")] = None,
    official: Annotated[str | None, typer.Option(help="Only this official (MaCanBo).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many records.")] = 1000,
) -> None:
    """List audit records, oldest first. ID numbers are stored and shown masked."""
    try:
        start = parse_since(since)
        end = parse_since(until) if until else None
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    settings = HubSettings()

    async def read() -> list[AuditEntry]:
        store = MessageStore.open(settings.database_url)
        try:
            await store.migrate()
            return await AuditLog(store.engine).entries(
                since=start, until=end, system=system, kind=kind, official=official, limit=limit
            )
        finally:
            await store.aclose()

    try:
        entries = asyncio.run(read())
    except StoreUnavailableError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(3) from None
    for entry in entries:
        typer.echo(json.dumps(entry.as_json(), ensure_ascii=False) if as_json else _line(entry))
    if not as_json:
        who = f" from system {system}" if system else ""
        typer.echo(f"{len(entries)} audit record(s){who} since {start.astimezone(LOCAL_TIME):%Y-%m-%d %H:%M}.")
