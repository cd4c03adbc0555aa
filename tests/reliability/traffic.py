"""A one-stop system posting a steady stream of dossier messages to the hub, as a real client does.

Each dossier's messages are posted in order (a desk works one dossier step by step); several
dossiers are in flight at once. Every message has its own Idempotency-Key. A 503, a connection
error or a request that got no answer is retried with the same key (that is what a real
one-stop system does), so a message may reach the hub more than once but must be stored once.

The stream records, per message, every answer it got; :mod:`tests.reliability.reconciliation`
compares that with the store and with what the mock portal received.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.harness import ONESTOP_KEY
from tests.support.payloads import dossier, dossier_code, step

__all__ = ["PlannedMessage", "TrafficStream", "plan_messages"]

#: The statuses one dossier goes through in the stream, each sent as a full-state ``dossier.upserted``.
DOSSIER_STATUSES = (1, 2, 4)
#: Progress steps sent after each status (``dossier.progress``, batched by the worker).
STEPS_AFTER_STATUS = {1: 1, 2: 2, 4: 0}
MESSAGES_PER_DOSSIER = len(DOSSIER_STATUSES) + sum(STEPS_AFTER_STATUS.values())


@dataclass
class PlannedMessage:
    """One logical message of the stream and what the hub answered to it."""

    key: str
    type: str
    dossier: str
    #: How the portal's received calls identify this message's effect: ``status:<n>`` or ``step:<text>``.
    effect: str
    payload: dict[str, Any]
    posts: int = 0
    statuses: list[int] = field(default_factory=list)
    no_answer: int = 0
    ids: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return bool(self.ids)

    @property
    def final_status(self) -> int | None:
        return self.statuses[-1] if self.statuses else None

    def body(self) -> dict[str, Any]:
        return {"type": self.type, "payload": self.payload}


def _dossier_messages(code: str, run: str) -> list[PlannedMessage]:
    messages: list[PlannedMessage] = []
    step_number = itertools.count(1)
    for status in DOSSIER_STATUSES:
        extra: dict[str, Any] = {"TrichYeuHoSo": f"Trạng thái {status} của hồ sơ thử tải"}
        messages.append(
            PlannedMessage(
                key=f"{run}:{code}:status:{status}",
                type="dossier.upserted",
                dossier=code,
                effect=f"status:{status}",
                payload=dossier(code, status=status, **extra),
            )
        )
        for _ in range(STEPS_AFTER_STATUS[status]):
            n = next(step_number)
            payload = step(code, n, status=status)
            messages.append(
                PlannedMessage(
                    key=f"{run}:{code}:step:{n}",
                    type="dossier.progress",
                    dossier=code,
                    effect=f"step:{payload['NoiDungXuLy']}",
                    payload=payload,
                )
            )
    return messages


def plan_messages(total: int, run: str) -> list[list[PlannedMessage]]:
    """At least ``total`` messages, grouped by dossier (each group is posted in order)."""
    dossiers = max(1, -(-total // MESSAGES_PER_DOSSIER))
    return [_dossier_messages(dossier_code(), run) for _ in range(dossiers)]


class TrafficStream:
    """Posts the planned messages from a background thread (its own event loop) until all are answered.

    ``concurrency`` dossiers are posted at once. A message is retried with the same key on 503,
    on 429 and when no answer came (connection refused or dropped, timeout), for up to
    ``give_up_after`` seconds; any other answer is final.
    """

    def __init__(
        self,
        url: str,
        groups: list[list[PlannedMessage]],
        *,
        concurrency: int = 16,
        give_up_after: float = 180.0,
        request_timeout: float = 10.0,
        key: str = ONESTOP_KEY,
    ) -> None:
        self.url = url
        self.groups = groups
        self.concurrency = concurrency
        self.give_up_after = give_up_after
        self.request_timeout = request_timeout
        self.key = key
        self._lock = threading.Lock()
        self._accepted = 0
        self._answered = 0
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def messages(self) -> list[PlannedMessage]:
        return [message for group in self.groups for message in group]

    @property
    def accepted(self) -> int:
        with self._lock:
            return self._accepted

    @property
    def answered(self) -> int:
        """Messages with a final answer (202 or a refusal), or given up."""
        with self._lock:
            return self._answered

    def __len__(self) -> int:
        return sum(len(group) for group in self.groups)

    # ------------------------------------------------------------------ control

    def start(self) -> TrafficStream:
        self._thread = threading.Thread(target=self._run, name="traffic-stream", daemon=True)
        self._thread.start()
        return self

    def wait_accepted(self, count: int, timeout: float = 120.0) -> None:
        """Block until ``count`` messages were accepted (or the stream ended)."""
        deadline = time.monotonic() + timeout
        while self.accepted < count:
            if self._thread is not None and not self._thread.is_alive():
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {self.accepted} of {count} messages were accepted within {timeout:g} s "
                    f"({self.answered} answered)"
                )
            time.sleep(0.05)

    def join(self, timeout: float = 600.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise AssertionError(f"the traffic stream did not finish within {timeout:g} s")
        if self._failure is not None:
            raise AssertionError(f"the traffic stream crashed: {self._failure!r}") from self._failure

    # ------------------------------------------------------------------ sending

    def _run(self) -> None:
        try:
            asyncio.run(self._send_all())
        except BaseException as exc:
            self._failure = exc

    async def _send_all(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.request_timeout, limits=limits) as client:
            queue: Iterator[list[PlannedMessage]] = iter(self.groups)

            async def desk() -> None:
                for group in queue:
                    for message in group:
                        await self._send(client, message)

            await asyncio.gather(*(desk() for _ in range(self.concurrency)))

    async def _send(self, client: httpx.AsyncClient, message: PlannedMessage) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Idempotency-Key": message.key}
        deadline = time.monotonic() + self.give_up_after
        delay = 0.1
        while True:
            message.posts += 1
            try:
                response = await client.post(f"{self.url}/v1/messages", json=message.body(), headers=headers)
            except httpx.HTTPError as exc:
                message.no_answer += 1
                message.errors.append(type(exc).__name__)
            else:
                message.statuses.append(response.status_code)
                if response.status_code == 202:
                    message.ids.add(str(response.json()["id"]))
                    with self._lock:
                        self._accepted += 1
                        self._answered += 1
                    return
                if response.status_code not in (429, 503):
                    message.errors.append(response.text[:300])
                    with self._lock:
                        self._answered += 1
                    return
            if time.monotonic() > deadline:
                with self._lock:
                    self._answered += 1
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
