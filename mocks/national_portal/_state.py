"""In-memory state of the fake national portal: dossiers, steps, tokens, calls and fault knobs.

Everything is guarded by one ``asyncio.Lock`` (the mock runs on one event loop).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CallRecord", "DossierRecord", "FaultKnobs", "FaultSettings", "PortalState"]

DEFAULT_ERROR_MESSAGE = "Lỗi xử lý dữ liệu trên Cổng DVCQG (lỗi giả lập)"
GATEWAY_ERROR_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>502 Bad Gateway</h1><p>The upstream server returned an invalid response.</p></body></html>"
)


class FaultSettings(BaseModel):
    """Body of ``POST /_mock/faults``: only the keys given are changed."""

    model_config = ConfigDict(extra="forbid")

    fail_next: int | None = Field(default=None, ge=0, description="N service calls answer `status`.")
    status: int | None = Field(default=None, ge=200, le=599, description="HTTP status of failures (503).")
    retry_after: float | str | None = Field(
        default=None, description="Sent as Retry-After with failures: seconds, or an HTTP date string."
    )
    latency_ms: int | None = Field(default=None, ge=0, description="Delay before every service call.")
    error_next: int | None = Field(default=None, ge=0, description="N calls answer error_code -1.")
    error_message: str | None = Field(default=None, description="Message of those error_code -1 replies.")
    drop_next: int | None = Field(default=None, ge=0, description="N calls: connection closed, no answer.")
    outage_seconds: float | None = Field(
        default=None, ge=0, description="Every call answers `status` for this many seconds from now."
    )
    expire_tokens: bool | None = Field(default=None, description="true: every issued token becomes invalid.")
    reject_procedures: list[str] | None = Field(default=None, description="MaTTHC always rejected.")
    bad_reply_next: int | None = Field(
        default=None, ge=0, description="N calls answer HTTP 200 with `bad_reply_body` (not the JSON reply)."
    )
    bad_reply_body: str | None = Field(default=None, description="Defaults to a gateway HTML error page.")
    required_client_id: str | None = Field(default=None, description="Token endpoint only accepts this id.")
    required_client_secret: str | None = Field(default=None, description="... and this secret.")
    token_ttl_seconds: int | None = Field(default=None, ge=1, description="expires_in of new tokens (3600).")


@dataclass
class FaultKnobs:
    fail_next: int = 0
    status: int = 503
    retry_after: str | None = None
    latency_ms: int = 0
    error_next: int = 0
    error_message: str = DEFAULT_ERROR_MESSAGE
    drop_next: int = 0
    outage_until: float | None = None  # time.monotonic()
    reject_procedures: set[str] = field(default_factory=set)
    bad_reply_next: int = 0
    bad_reply_body: str = GATEWAY_ERROR_PAGE
    required_client_id: str | None = None
    required_client_secret: str | None = None
    token_ttl_seconds: int = 3600

    def apply(self, settings: FaultSettings) -> None:
        if settings.fail_next is not None:
            self.fail_next = settings.fail_next
        if settings.status is not None:
            self.status = settings.status
        if settings.retry_after is not None:
            value = settings.retry_after
            self.retry_after = value if isinstance(value, str) else f"{value:g}"
        for name in ("latency_ms", "error_next", "drop_next", "bad_reply_next", "token_ttl_seconds"):
            value = getattr(settings, name)
            if value is not None:
                setattr(self, name, value)
        for name in ("error_message", "bad_reply_body", "required_client_id", "required_client_secret"):
            value = getattr(settings, name)
            if value is not None:
                setattr(self, name, value)
        if settings.outage_seconds is not None:
            self.outage_until = time.monotonic() + settings.outage_seconds
        if settings.reject_procedures is not None:
            self.reject_procedures = set(settings.reject_procedures)

    def outage_remaining(self) -> float:
        if self.outage_until is None:
            return 0.0
        return max(0.0, self.outage_until - time.monotonic())

    def as_dict(self) -> dict[str, Any]:
        return {
            "fail_next": self.fail_next,
            "status": self.status,
            "retry_after": self.retry_after,
            "latency_ms": self.latency_ms,
            "error_next": self.error_next,
            "error_message": self.error_message,
            "drop_next": self.drop_next,
            "outage_remaining_seconds": round(self.outage_remaining(), 3),
            "reject_procedures": sorted(self.reject_procedures),
            "bad_reply_next": self.bad_reply_next,
            "bad_reply_body": self.bad_reply_body,
            "required_client_id": self.required_client_id,
            "required_client_secret": "***" if self.required_client_secret else None,
            "token_ttl_seconds": self.token_ttl_seconds,
        }


@dataclass
class DossierRecord:
    current: dict[str, Any]
    status_history: list[int] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "MaHoSo": self.current.get("MaHoSo"),
            "current": self.current,
            "status_history": self.status_history,
            "steps": self.steps,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class CallRecord:
    seq: int
    service: str
    time: str
    body: Any
    is_updating: bool | None = None
    dossier_codes: list[str] = field(default_factory=list)
    status: int | None = None
    error_code: int | None = None
    message: str | None = None
    outcome: str = "pending"
    duration_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "service": self.service,
            "isUpdating": self.is_updating,
            "MaHoSo": self.dossier_codes,
            "status": self.status,
            "error_code": self.error_code,
            "message": self.message,
            "outcome": self.outcome,
            "time": self.time,
            "duration_ms": self.duration_ms,
            "body": self.body,
        }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def body_hash(item: dict[str, Any]) -> str:
    canonical = json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class PortalState:
    """Everything the fake portal remembers. Mutate only while holding ``lock``."""

    catalogue: dict[str, dict[str, Any]]
    #: Credentials the token endpoint requires from the start (and again after DELETE /_mock/faults).
    client_id: str | None = None
    client_secret: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    faults: FaultKnobs = field(default_factory=FaultKnobs)
    dossiers: dict[str, DossierRecord] = field(default_factory=dict)
    calls: list[CallRecord] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> monotonic expiry
    tokens_issued: int = 0
    upsert_acceptances: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    step_acceptances: Counter[tuple[str, str, int, str]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.reset_faults()

    def reset_faults(self) -> None:
        self.faults = FaultKnobs(required_client_id=self.client_id, required_client_secret=self.client_secret)

    def reset_calls_and_dossiers(self) -> None:
        self.dossiers.clear()
        self.calls.clear()
        self.tokens_issued = 0
        self.upsert_acceptances.clear()
        self.step_acceptances.clear()

    def issue_token(self) -> tuple[str, int]:
        token = secrets.token_urlsafe(24)
        ttl = self.faults.token_ttl_seconds
        self.tokens[token] = time.monotonic() + ttl
        self.tokens_issued += 1
        return token, ttl

    def token_is_valid(self, token: str) -> bool:
        expiry = self.tokens.get(token)
        if expiry is None:
            return False
        if expiry <= time.monotonic():
            del self.tokens[token]
            return False
        return True

    def start_call(self, service: str, body: Any) -> CallRecord:
        record = CallRecord(seq=len(self.calls) + 1, service=service, time=now_iso(), body=body)
        if isinstance(body, dict):
            if isinstance(body.get("isUpdating"), bool):
                record.is_updating = body["isUpdating"]
            data = body.get("data")
            items = data if isinstance(data, list) else [body]
            record.dossier_codes = [
                item["MaHoSo"] for item in items if isinstance(item, dict) and isinstance(item.get("MaHoSo"), str)
            ]
        self.calls.append(record)
        return record

    def record_upsert(self, item: dict[str, Any], *, creating: bool) -> None:
        code = item["MaHoSo"]
        status = int(item["TrangThaiHoSo"])
        stamp = now_iso()
        record = self.dossiers.get(code)
        if creating or record is None:
            record = DossierRecord(current=item, created_at=stamp)
            self.dossiers[code] = record
        record.current = item
        record.updated_at = stamp
        record.status_history.append(status)
        self.upsert_acceptances[(code, status, body_hash(item))] += 1

    def record_step(self, step: dict[str, Any]) -> None:
        code = step["MaHoSo"]
        self.dossiers[code].steps.append(step)
        key = (code, str(step["ThoiDiemXuLy"]), int(step["TrangThai"]), str(step["NoiDungXuLy"]))
        self.step_acceptances[key] += 1

    def stats(self) -> dict[str, Any]:
        by_service: Counter[str] = Counter(call.service for call in self.calls)
        by_outcome: Counter[str] = Counter(call.outcome for call in self.calls)
        upserts_by_dossier: Counter[str] = Counter()
        for (code, _, _), count in self.upsert_acceptances.items():
            upserts_by_dossier[code] += count
        steps_by_dossier = {code: len(record.steps) for code, record in self.dossiers.items() if record.steps}
        duplicate_upserts = sum(count - 1 for count in self.upsert_acceptances.values() if count > 1)
        duplicate_steps = sum(count - 1 for count in self.step_acceptances.values() if count > 1)
        return {
            "calls": len(self.calls),
            "calls_by_service": dict(by_service),
            "calls_by_outcome": dict(by_outcome),
            "dossiers": len(self.dossiers),
            "accepted_upserts_by_dossier": dict(upserts_by_dossier),
            "accepted_steps_by_dossier": steps_by_dossier,
            "duplicate_upserts": duplicate_upserts,
            "duplicate_steps": duplicate_steps,
            "duplicates": duplicate_upserts + duplicate_steps,
            "tokens_issued": self.tokens_issued,
            "tokens_active": len(self.tokens),
        }
