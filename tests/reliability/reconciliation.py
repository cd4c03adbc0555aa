"""Reconcile what the client was told (202s) with the store and with what the target received.

For every accepted message the store must say ``delivered``, ``superseded`` (an older dossier
state not sent because a newer one was delivered) or ``dead_lettered`` with a reason, and every
delivered message's effect must be at the mock portal exactly once: a dossier state by
(MaHoSo, TrangThaiHoSo, body hash) as the mock's own stats count it, a progress step by
(MaHoSo, NoiDungXuLy). Anything else is lost or duplicated.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx
import psycopg

from tests.reliability.traffic import PlannedMessage

__all__ = ["Figures", "StoredDelivery", "connect", "reconcile", "stored_deliveries", "wait_until_settled"]

TARGET = "national-portal"
OPEN_STATES = ("pending", "accepted", "retrying", "replayed")


@dataclass(frozen=True)
class StoredDelivery:
    id: str
    seq: int
    idempotency_key: str | None
    dossier: str | None
    type: str
    payload: dict[str, Any]
    state: str
    last_error: str | None
    attempts: int


@dataclass
class Figures:
    """The line each test prints: ``sent accepted delivered superseded dlq duplicates lost``."""

    fault: str
    sent: int = 0
    accepted: int = 0
    delivered: int = 0
    superseded: int = 0
    dlq: int = 0
    #: Dossier states the portal took more than once (MaHoSo + TrangThaiHoSo + body), and keys stored twice.
    duplicates: int = 0
    lost: int = 0
    #: Progress steps the portal took more than once. The portal cannot be asked which steps it has,
    #: so a step whose call was in flight when a worker died is sent again (at-least-once).
    repeated_steps: int = 0
    #: Messages stored without the client ever getting their 202 (the ingress died before answering).
    stored_unanswered: int = 0
    #: Client requests that got no answer (connection refused or dropped) or a 503, then retried.
    client_retries: int = 0
    problems: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        line = (
            f"{self.fault}: sent={self.sent} accepted={self.accepted} delivered={self.delivered} "
            f"superseded={self.superseded} dlq={self.dlq} duplicates={self.duplicates} lost={self.lost}"
        )
        return line + (f" repeated_steps={self.repeated_steps}" if self.repeated_steps else "")

    def assert_accounted(self, *, max_repeated_steps: int = 0, hub: HasLogs | None = None) -> None:
        """Nothing lost, nothing duplicated, no other problem; at most ``max_repeated_steps`` repeated steps.

        With ``hub``, a failure shows the tail of its processes' logs, and a duplicate every log line
        of the dossiers concerned (what each copy of the message did).
        """
        report = "\n".join([self.line(), *self.problems[:25]])
        logs = hub.logs() if hub is not None else ""
        assert self.lost == 0, f"{report}\n{logs}"
        assert self.duplicates == 0, f"{report}\n{_lines_about(hub, self.problems)}"
        assert not self.problems, f"{report}\n{logs}"
        assert self.repeated_steps <= max_repeated_steps, (
            f"{report}\nrepeated steps: {self.notes.get('repeated_steps_detail', [])[:20]}"
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = self.problems[:20]
        return data


class HasLogs(Protocol):
    def logs(self, tail: int = 3000) -> str: ...


_DOSSIER_CODE = re.compile(r"H\d\d\.[\d.]+-\d+-\d+")


def _lines_about(hub: HasLogs | None, problems: list[str], limit: int = 80) -> str:
    """The hub's log lines that name a dossier mentioned in ``problems`` (the first ``limit``)."""
    codes = {code for problem in problems for code in _DOSSIER_CODE.findall(problem)}
    if hub is None or not codes:
        return ""
    lines = [line[:600] for line in hub.logs(tail=10**9).splitlines() if any(code in line for code in codes)]
    return f"log lines of {', '.join(sorted(codes))}:\n" + "\n".join(lines[:limit])


def _psycopg_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def connect(dsn: str, patience: float = 60.0) -> psycopg.Connection[Any]:
    """Connect to PostgreSQL, waiting while it is out of connections (other test runs share it)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return psycopg.connect(dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            if "too many clients" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def stored_deliveries(database_url: str) -> dict[str, StoredDelivery]:
    """Every message in the store with its delivery to the portal, by message id."""
    with connect(_psycopg_dsn(database_url)) as connection:
        rows = connection.execute(
            "SELECT m.id, m.seq, m.idempotency_key, m.dossier_code, m.type, m.payload, d.state, d.last_error, "
            "d.attempts FROM messages m JOIN deliveries d ON d.message_id = m.id WHERE d.target = %s",
            (TARGET,),
        ).fetchall()
    found = {}
    for row in rows:
        payload = row[5] if isinstance(row[5], dict) else json.loads(row[5])
        found[row[0]] = StoredDelivery(row[0], row[1], row[2], row[3], row[4], payload, row[6], row[7], row[8])
    return found


def wait_until_settled(database_url: str, accepted_ids: set[str], timeout: float) -> dict[str, StoredDelivery]:
    """Wait until every accepted message is in the store and none is still on its way (or ``timeout``).

    Not an assertion: what has not settled by then is reported as lost by :func:`reconcile`.
    """
    deadline = time.monotonic() + timeout
    while True:
        stored = stored_deliveries(database_url)
        missing = accepted_ids - stored.keys()
        open_count = sum(d.state in OPEN_STATES for d in stored.values())
        if (not missing and not open_count) or time.monotonic() > deadline:
            return stored
        time.sleep(0.5)


def body_hash(item: dict[str, Any]) -> str:
    """The mock portal's own hash of an accepted item (``mocks.national_portal._state.body_hash``)."""
    canonical = json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def portal_effects(portal_url: str) -> tuple[Counter[tuple[str, str]], dict[tuple[str, str], set[str]]]:
    """Accepted effects at the mock portal: ``(MaHoSo, effect) -> count`` and the body hashes seen."""
    calls = httpx.get(f"{portal_url}/_mock/calls", timeout=60).json()
    counts: Counter[tuple[str, str]] = Counter()
    hashes: dict[tuple[str, str], set[str]] = {}
    for call in calls:
        if call.get("outcome") != "accepted" or not isinstance(call.get("body"), dict):
            continue
        for item in call["body"].get("data") or []:
            if call["service"] == "DongBoHoSoMC":
                key = (item["MaHoSo"], f"status:{item['TrangThaiHoSo']}")
            elif call["service"] == "CapNhatTienDoHoSoMC":
                key = (item["MaHoSo"], f"step:{item['NoiDungXuLy']}")
            else:
                continue
            counts[key] += 1
            hashes.setdefault(key, set()).add(body_hash(item))
    return counts, hashes


def _effect_of(delivery: StoredDelivery) -> tuple[str, str]:
    if delivery.type == "dossier.upserted":
        return (delivery.payload["MaHoSo"], f"status:{delivery.payload['TrangThaiHoSo']}")
    return (delivery.payload["MaHoSo"], f"step:{delivery.payload['NoiDungXuLy']}")


def reconcile(
    fault: str,
    messages: list[PlannedMessage],
    *,
    database_url: str,
    portal_url: str,
    settle_timeout: float,
    expected_dlq: set[str] | None = None,
) -> Figures:
    """Compare the client's 202s, the store and the portal; return the figures with every problem found.

    ``expected_dlq`` are the Idempotency-Keys of messages meant to be dead-lettered (poison).
    """
    figures = Figures(fault=fault, sent=len(messages))
    accepted = [m for m in messages if m.accepted]
    figures.accepted = len(accepted)
    figures.client_retries = sum(m.posts - 1 for m in messages)
    for message in messages:
        if len(message.ids) > 1:
            figures.problems.append(f"key {message.key} was answered with several ids: {sorted(message.ids)}")
        if not message.accepted:
            figures.problems.append(
                f"key {message.key} was never accepted: answers {message.statuses[-5:]}, errors {message.errors[-3:]}"
            )
    accepted_ids = {next(iter(m.ids)) for m in accepted}
    stored = wait_until_settled(database_url, accepted_ids, settle_timeout)
    by_key: dict[str, list[StoredDelivery]] = {}
    for delivery in stored.values():
        by_key.setdefault(delivery.idempotency_key or f"(no key) {delivery.id}", []).append(delivery)
    planned_keys = {m.key for m in messages}
    for key, rows in by_key.items():
        if len(rows) > 1:
            figures.duplicates += len(rows) - 1
            figures.problems.append(f"key {key} is stored {len(rows)} times")
        if key not in planned_keys:
            figures.problems.append(f"the store holds a message nobody sent (key {key})")
    figures.stored_unanswered = sum(1 for m in messages if not m.accepted and m.key in by_key)

    effects, hashes = portal_effects(portal_url)
    expected_dlq = expected_dlq or set()
    for message in accepted:
        message_id = next(iter(message.ids))
        record = stored.get(message_id)
        if record is None:
            figures.lost += 1
            figures.problems.append(f"accepted message {message_id} ({message.key}) is not in the store")
            continue
        effect = _effect_of(record)
        if record.state == "delivered":
            figures.delivered += 1
            if effects[effect] == 0:
                figures.lost += 1
                figures.problems.append(f"{message_id} ({message.key}) is delivered in the store, not at the portal")
            elif body_hash(record.payload) not in hashes[effect]:
                figures.problems.append(f"{message_id} ({message.key}) reached the portal with another body")
        elif record.state == "superseded":
            figures.superseded += 1
        elif record.state == "dead_lettered":
            figures.dlq += 1
            if not record.last_error:
                figures.problems.append(f"{message_id} ({message.key}) is dead-lettered without a reason")
            if message.key not in expected_dlq:
                figures.problems.append(
                    f"{message_id} ({message.key}) was dead-lettered unexpectedly: {record.last_error}"
                )
        else:
            figures.lost += 1
            figures.problems.append(f"{message_id} ({message.key}) is stuck in state {record.state}")
    for key in expected_dlq:
        rows = by_key.get(key, [])
        if not rows or rows[0].state != "dead_lettered":
            figures.problems.append(f"poison message {key} is not dead-lettered: {[r.state for r in rows]}")

    for effect, count in effects.items():
        if count > 1 and effect[1].startswith("step:"):
            figures.repeated_steps += count - 1
            figures.notes.setdefault("repeated_steps_detail", []).append(f"{effect[0]} {effect[1]} x{count}")
        elif count > 1:
            figures.duplicates += count - 1
            figures.problems.append(f"the portal took {effect[0]} {effect[1]} {count} times")

    _check_latest_state(figures, stored, portal_url)
    return figures


def _check_latest_state(figures: Figures, stored: dict[str, StoredDelivery], portal_url: str) -> None:
    """Each superseded state has a newer delivered one, and the portal ends on the newest delivered state."""
    upserts: dict[str, list[StoredDelivery]] = {}
    for delivery in stored.values():
        if delivery.type == "dossier.upserted" and delivery.dossier:
            upserts.setdefault(delivery.dossier, []).append(delivery)
    checked = 0
    with httpx.Client(base_url=portal_url, timeout=10) as client:
        for code, rows in upserts.items():
            rows.sort(key=lambda d: d.seq)
            delivered = [d for d in rows if d.state == "delivered"]
            for row in rows:
                if row.state == "superseded" and not any(d.seq > row.seq for d in delivered):
                    figures.problems.append(f"{row.id} is superseded but no newer state of {code} was delivered")
            if not delivered:
                continue
            newest = delivered[-1]
            if any(d.seq > newest.seq and d.state != "dead_lettered" for d in rows):
                continue  # reported above as stuck
            current = client.get(f"/_mock/dossiers/{code}").json().get("current", {})
            checked += 1
            if current.get("TrangThaiHoSo") != newest.payload["TrangThaiHoSo"]:
                figures.problems.append(
                    f"the portal shows {code} in status {current.get('TrangThaiHoSo')}, but the newest delivered "
                    f"state is {newest.payload['TrangThaiHoSo']}"
                )
    figures.notes["dossiers_checked"] = checked
