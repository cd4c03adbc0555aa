"""Send one-stop dossier lifecycles to the hub's ingress API, as the provincial system would.

Each message is ``POST {hub_url}/v1/messages`` with the one-stop system's key and the message's
idempotency key. Dossiers are interleaved (several are "open" at once, as at a real desk) while the
messages of one dossier keep their order. Only what can succeed later is retried, with backoff and
the same idempotency key: connection errors, timeouts, 429 and 5xx (503 is the hub saying it cannot
persist right now). A 4xx refusal is final; the rest of that dossier is then skipped so the hub never
sees its statuses out of order. A 401 or 403 stops the run: every further message would be refused.

Output lines never carry the applicant's name, ID number, phone number or e-mail address; the hub's
error sentences are printed with those values masked.
"""

from __future__ import annotations

import asyncio
import random
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from mocks.onestop.generator import DEFAULT_AGENCY_CODE, DossierGenerator, LifecycleMessage

__all__ = ["BackoffPolicy", "LifecycleSender", "SendReport", "send_lifecycles"]

_USER_AGENT = "lgsp-mock-onestop/0.1"
_MASK = "***"
_MAX_ERROR_CHARS = 400


@dataclass
class SendReport:
    """What happened to the messages of a run.

    ``sent`` counts messages posted at least once (retries are not counted again); ``ids`` are the
    hub's ids of the accepted messages, in sending order.
    """

    sent: int = 0
    accepted: int = 0
    #: Accepted messages the hub already had under the same idempotency key (a rerun, a retry).
    duplicates: int = 0
    refused: int = 0
    gave_up: int = 0
    skipped: int = 0
    ids: list[str] = field(default_factory=list)
    #: Why the run stopped before the end (401/403), as a sentence; None when it ran to the end.
    stopped: str | None = None

    @property
    def all_accepted(self) -> bool:
        return self.refused == 0 and self.gave_up == 0 and self.skipped == 0 and self.stopped is None

    def summary(self) -> str:
        return (
            f"{self.sent} messages sent: {self.accepted} accepted ({self.duplicates} already known to the "
            f"hub), {self.refused} refused, "
            f"{self.gave_up} given up after retries, {self.skipped} skipped."
        )


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff with jitter for transient failures; ``Retry-After`` is honoured."""

    max_attempts: int = 8
    first_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        ceiling = min(self.first_delay * 2 ** (attempt - 1), self.max_delay)
        return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class _Outcome:
    status_code: int | None
    hub_id: str | None = None
    duplicate: bool = False
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _Pacer:
    """Spaces sends to at most ``rate`` per second without bursting to catch up after a pause."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be more than 0 messages per second, got {rate}")
        self._interval = 1.0 / rate
        self._next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        if self._next > now:
            await asyncio.sleep(self._next - now)
        self._next = max(self._next, now) + self._interval


class LifecycleSender:
    """Posts lifecycles to one hub; ``report`` fills in as it goes (also when interrupted)."""

    def __init__(
        self,
        hub_url: str,
        key: str,
        *,
        rate: float,
        seed: int,
        client: httpx.AsyncClient,
        backoff: BackoffPolicy | None = None,
        open_dossiers: int = 5,
        echo: Callable[[str], None] | None = None,
        echo_retry: Callable[[str], None] | None = None,
    ) -> None:
        if not key:
            raise ValueError("The hub key is empty: give the one-stop system's key.")
        self._url = hub_url.rstrip("/") + "/v1/messages"
        self._key = key
        self._pacer = _Pacer(rate)
        self._client = client
        self._backoff = backoff or BackoffPolicy()
        self._open_dossiers = max(1, open_dossiers)
        self._rng = random.Random(f"onestop-sender:{seed}")
        self._echo = echo or _silent
        self._echo_retry = echo_retry or _silent
        self.report = SendReport()

    async def run(self, lifecycles: Iterable[list[LifecycleMessage]]) -> SendReport:
        """Send every lifecycle, interleaved; return the report once all are done or the run stops."""
        pending = iter(lifecycles)
        open_: list[deque[LifecycleMessage]] = []
        while True:
            while len(open_) < self._open_dossiers and (lifecycle := next(pending, None)) is not None:
                if lifecycle:
                    open_.append(deque(lifecycle))
            if not open_:
                return self.report
            slot = self._rng.randrange(len(open_))
            message = open_[slot].popleft()
            outcome = await self._deliver(message)
            self._echo(_line(message, outcome))
            if outcome.accepted:
                self.report.accepted += 1
                self.report.duplicates += outcome.duplicate
                if outcome.hub_id:
                    self.report.ids.append(outcome.hub_id)
            elif outcome.status_code is not None and 400 <= outcome.status_code < 500:
                self.report.refused += 1
                if outcome.status_code in (401, 403):
                    self.report.stopped = (
                        f"The hub answered {outcome.status_code} to the one-stop system's key: "
                        "check that the key is the one the hub issued to this system and that it "
                        "may send dossier messages. Nothing more was sent."
                    )
                    return self.report
            else:
                self.report.gave_up += 1
            if not outcome.accepted:
                self._skip_rest(open_[slot])
            if not open_[slot]:
                open_.pop(slot)

    def _skip_rest(self, remaining: deque[LifecycleMessage]) -> None:
        while remaining:
            message = remaining.popleft()
            self.report.skipped += 1
            self._echo(
                f"{message.dossier_code} {message.type} {message.status} -> skipped "
                "(an earlier message of this dossier was not accepted)"
            )

    async def _deliver(self, message: LifecycleMessage) -> _Outcome:
        headers = {
            "Authorization": f"Bearer {self._key}",
            "Idempotency-Key": message.idempotency_key,
            "User-Agent": _USER_AGENT,
        }
        self.report.sent += 1
        attempt = 0
        while True:
            attempt += 1
            await self._pacer.wait()
            retry_after: float | None = None
            try:
                response = await self._client.post(self._url, json=message.body(), headers=headers)
            except httpx.TransportError as exc:
                problem = f"cannot reach the hub ({type(exc).__name__})"
            else:
                if 200 <= response.status_code < 300:
                    hub_id, duplicate = _acceptance(response)
                    return _Outcome(response.status_code, hub_id=hub_id, duplicate=duplicate)
                if response.status_code < 400:
                    location = response.headers.get("Location", "elsewhere")
                    return _Outcome(
                        response.status_code,
                        reason=f"the hub redirected to {location}: check the hub URL; not retried",
                    )
                if response.status_code != 429 and response.status_code < 500:
                    return _Outcome(response.status_code, reason=_refusal_reason(response, message))
                problem = f"the hub answered {response.status_code}"
                retry_after = _retry_after(response)
            if attempt >= self._backoff.max_attempts:
                return _Outcome(
                    None,
                    reason=f"gave up after {attempt} attempts: {problem}; resend later with the same key",
                )
            delay = self._backoff.delay(attempt, self._rng, retry_after)
            self._echo_retry(
                f"{message.dossier_code} {message.type} {message.status}: {problem}; "
                f"retry {attempt + 1}/{self._backoff.max_attempts} in {delay:.1f}s with the same key"
            )
            await asyncio.sleep(delay)


async def send_lifecycles(
    hub_url: str,
    key: str,
    dossiers: int | None,
    rate: float,
    seed: int,
    *,
    agency_code: str = DEFAULT_AGENCY_CODE,
    nfd_ratio: float = 0.2,
    backoff: BackoffPolicy | None = None,
    echo: Callable[[str], None] | None = None,
    echo_retry: Callable[[str], None] | None = None,
    client: httpx.AsyncClient | None = None,
) -> SendReport:
    """Generate ``dossiers`` lifecycles (None: without end) from ``seed`` and send them to the hub.

    ``rate`` is in messages per second. ``echo`` receives one line per message, ``echo_retry`` one
    line per retry; both are silent by default. Give ``client`` to reuse a configured httpx client.
    """
    generator = DossierGenerator(seed, agency_code, nfd_ratio=nfd_ratio)
    lifecycles = generator.lifecycle(dossiers)
    own_client = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(10.0))
    try:
        sender = LifecycleSender(
            hub_url,
            key,
            rate=rate,
            seed=seed,
            client=http,
            backoff=backoff,
            echo=echo,
            echo_retry=echo_retry,
        )
        return await sender.run(lifecycles)
    finally:
        if own_client:
            await http.aclose()


# --- Output ------------------------------------------------------------------------------------


def _silent(_text: str) -> None:
    return None


def _line(message: LifecycleMessage, outcome: _Outcome) -> str:
    head = f"{message.dossier_code} {message.type} {message.status} ->"
    if outcome.accepted:
        duplicate = " (duplicate)" if outcome.duplicate else ""
        return f"{head} {outcome.status_code} {outcome.hub_id or '?'}{duplicate}"
    if outcome.status_code is None:
        return f"{head} {outcome.reason}"
    return f"{head} {outcome.status_code} {outcome.reason}".rstrip()


def _acceptance(response: httpx.Response) -> tuple[str | None, bool]:
    """The hub's message id and whether it already had the message (``{"id", "targets", "duplicate"}``)."""
    try:
        body = response.json()
    except ValueError:
        return None, False
    if not isinstance(body, dict):
        return None, False
    hub_id = body.get("id")
    return (str(hub_id) if hub_id is not None else None), body.get("duplicate") is True


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return float(value)
    except ValueError:
        return None  # absent, or an HTTP date: use our own backoff


def _refusal_reason(response: httpx.Response, message: LifecycleMessage) -> str:
    """The hub's error sentences, with the applicant's personal data masked."""
    try:
        body: Any = response.json()
    except ValueError:
        text = response.text
    else:
        if isinstance(body, dict):
            errors = body.get("errors")
            if isinstance(errors, list) and errors:
                text = "; ".join(str(e) for e in errors)
            else:
                text = str(body.get("detail", body))
        else:
            text = str(body)
    text = " ".join(_mask_personal_data(text, message.payload).split())
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 1] + "…"
    return text


def _mask_personal_data(text: str, payload: dict[str, Any]) -> str:
    values: set[str] = set()
    for field_name in ("ChuHoSo", "SoGiayToChuHoSo", "MaDoiTuong", "SoDienThoai", "Email"):
        value = payload.get(field_name)
        if isinstance(value, str) and value:
            values.add(value)
    for identifier in payload.get("DinhDanhCHS") or []:
        if isinstance(identifier, dict) and isinstance(identifier.get("SoDinhDanh"), str):
            values.add(identifier["SoDinhDanh"])
    forms = {unicodedata.normalize(form, v) for v in values for form in ("NFC", "NFD")}
    for value in sorted(forms, key=len, reverse=True):
        text = text.replace(value, _MASK)
    return unicodedata.normalize("NFC", text)
