"""Tracking of VNPost parcels: callbacks and polling in, ``postal.status_changed`` out, in order.

VNPost reports a parcel's statuses (0 created … 4 delivered) by callback; the hub also polls
getOrderTracking for parcels that go quiet (no news for ``poll_after``). Either way a status is
stored once per parcel. The statuses not yet sent on are then originated as ``postal.status_changed``
in ascending order, one message each, by one process at a time per parcel (a claim in the database).
A status that arrives by callback while an earlier one is missing waits up to ``reorder_window`` for
it (callbacks can overtake each other), then goes out anyway (VNPost may skip a status); a status
older than one already sent is kept in the history but not sent on by itself. The route delivers them
with ``ordering: latest-state``, so the one-stop system never receives an older status after a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from adapters.vnpost.adapter import VNPostAdapter
from adapters.vnpost.shipments import Shipment, ShipmentBook
from adapters.vnpost.wire import StatusCallback, TrackingEventWire
from hub.plugin import ConfigurationError, DeliveryError, HubContext, StoreUnavailableError
from schemas.postal import TrackingStatus

__all__ = ["ADAPTER_NAME", "CallbackReply", "PollReport", "ShipmentTracker", "VNPostTargets", "open_vnpost_targets"]

log = structlog.get_logger(__name__)

CLAIM_TTL = timedelta(seconds=30)

#: The ``adapter:`` name of VNPost targets in route files.
ADAPTER_NAME = "vnpost"


@dataclass(frozen=True, slots=True)
class CallbackReply:
    http_status: int
    body: dict[str, Any]


@dataclass
class PollReport:
    polled: int = 0
    new_statuses: int = 0
    poll_failures: int = 0
    sent_on: int = 0

    def summary(self) -> str:
        return (
            f"{self.polled} parcel(s) polled ({self.poll_failures} failed), {self.new_statuses} new status(es), "
            f"{self.sent_on} status message(s) sent on."
        )


def _status_name(status: int, given: str | None) -> str:
    if given:
        return given
    try:
        return TrackingStatus(status).label_vi
    except ValueError:
        return str(status)


class ShipmentTracker:
    def __init__(self, context: HubContext, adapters: Mapping[str, VNPostAdapter]) -> None:
        self.context = context
        self.book = ShipmentBook(context.engine)
        self.by_target = dict(adapters)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._rechecks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ callbacks

    async def handle_callback(self, body: bytes, token: str | None) -> CallbackReply:
        """One VNPost tracking callback (one event or a list); the reply is VNPost's JSON shape."""
        if not self.token_known(token):
            log.warning("vnpost_callback_refused", reason="token")
            return CallbackReply(401, {"Status": "401", "Message": "Sai hoặc thiếu X-VNPost-Token"})
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError:
            return CallbackReply(400, {"Status": "102", "Message": "Bản tin không phải JSON"})
        items = raw if isinstance(raw, list) else [raw]
        try:
            callbacks = [StatusCallback.model_validate(item) for item in items]
        except ValidationError as exc:
            fields = ", ".join(sorted({str(e["loc"][-1]) for e in exc.errors() if e["loc"]}))
            return CallbackReply(400, {"Status": "102", "Message": f"Thiếu hoặc sai trường: {fields}"})
        unknown: list[str] = []
        touched: list[str] = []
        for callback in callbacks:
            shipment = await self.book.by_item_code(callback.ItemCode)
            if shipment is None:
                unknown.append(callback.ItemCode)
                log.warning("vnpost_callback_unknown_parcel", item_code=callback.ItemCode)
                continue
            await self.record(shipment, [callback.event()], channel="callback")
            touched.append(callback.ItemCode)
        for item_code in dict.fromkeys(touched):
            await self.send_on(item_code)
        if unknown:
            return CallbackReply(200, {"Status": "104", "Message": f"Không có vận đơn: {', '.join(unknown)}"})
        return CallbackReply(200, {"Status": "100", "Message": "Đã nhận"})

    def token_known(self, token: str | None) -> bool:
        """``token`` (X-VNPost-Token) is the callback token of one of the VNPost targets."""
        if not token:
            return False
        given = token.encode()
        return any(
            adapter.callback_token is not None and hmac.compare_digest(given, adapter.callback_token.encode())
            for adapter in self.by_target.values()
        )

    async def record(self, shipment: Shipment, events: Iterable[TrackingEventWire], *, channel: str) -> int:
        """Store new statuses of ``shipment``; returns how many were new."""
        adapter = self.by_target.get(shipment.target)
        poll_after = adapter.poll_after if adapter is not None else timedelta(hours=2)
        new = 0
        for event in events:
            stored = await self.book.record_event(
                shipment.item_code or "",
                status=event.Status,
                status_name=_status_name(event.Status, event.StatusName),
                event_time=event.Time,
                post_office=event.PostOffice,
                note=event.Note,
                channel=channel,
                poll_after=poll_after,
            )
            new += int(stored)
            if not stored:
                log.info("vnpost_status_repeated", item_code=shipment.item_code, status=event.Status, channel=channel)
        return new

    # ------------------------------------------------------------------ sending statuses on, in order

    async def send_on(self, item_code: str) -> int:
        """Originate every status of ``item_code`` newer than the last one sent, in ascending order."""
        sent = 0
        attempts = 3
        for attempt in range(1, attempts + 1):
            if not await self.book.claim(item_code, self.owner, ttl=CLAIM_TTL):
                return sent  # another process holds it and looks again before letting go
            try:
                done, held_for = await self._send_unsent(item_code)
                sent += done
            finally:
                await self.book.release(item_code, self.owner)
            if held_for is not None:
                if attempt == attempts:
                    self._recheck_later(item_code, held_for)
                    return sent
                continue  # a callback refused the claim meanwhile may have brought the missing status
            if not await self.book.has_unsent(item_code):
                return sent
        return sent

    async def _send_unsent(self, item_code: str) -> tuple[int, float | None]:
        """Send what can go out now; also return how long a held-back status still waits (or None)."""
        sent = 0
        while True:
            shipment = await self.book.by_item_code(item_code)
            if shipment is None:
                return sent, None
            adapter = self.by_target.get(shipment.target)
            window = adapter.reorder_window if adapter is not None else timedelta(0)
            events = await self.book.events(item_code)
            unsent = [e for e in events if e.status > shipment.emitted_status]
            if not unsent:
                return sent, None
            expected = shipment.emitted_status + 1
            for event in unsent:
                waited = datetime.now(UTC) - event.received_at
                if event.status > expected and event.channel == "callback" and waited < window:
                    log.info("vnpost_status_held", item_code=item_code, status=event.status, missing=expected)
                    return sent, (window - waited).total_seconds()
                history = [e.as_event() for e in events if e.status <= event.status]
                payload = {
                    "MaHoSo": shipment.dossier_code,
                    "ItemCode": item_code,
                    "OrderNumber": shipment.order_number,
                    "Direction": shipment.direction,
                    **event.as_event(),
                    "History": history,
                }
                message = await self.context.originate(
                    message_type="postal.status_changed",
                    payload=payload,
                    source=shipment.target,
                    idempotency_key=f"postal.status_changed:{item_code}:{event.status}",
                )
                await self.book.mark_emitted(item_code, event.status, message.id if message else "none")
                expected = event.status + 1
                sent += 1

    def _recheck_later(self, item_code: str, delay: float) -> None:
        """Look at a held-back parcel again when its wait is over (the periodic pass does it too)."""

        async def recheck() -> None:
            await asyncio.sleep(delay + 0.05)
            try:
                await self.send_on(item_code)
            except Exception:  # the periodic pass retries
                log.exception("vnpost_recheck_failed", item_code=item_code)

        task = asyncio.get_running_loop().create_task(recheck())
        self._rechecks.add(task)
        task.add_done_callback(self._rechecks.discard)

    async def aclose(self) -> None:
        for task in list(self._rechecks):
            task.cancel()
        for task in list(self._rechecks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ polling

    async def poll_once(self, *, now: datetime | None = None) -> PollReport:
        """Poll quiet parcels, then send on any status left unsent (a crash, a lost claim)."""
        now = now or datetime.now(UTC)
        report = PollReport()
        for shipment in await self.book.due_for_poll(now):
            adapter = self.by_target.get(shipment.target)
            if adapter is None or shipment.item_code is None:
                continue
            if not await self.book.claim_poll(shipment, now=now, next_poll_at=now + adapter.poll_after):
                continue
            report.polled += 1
            try:
                tracking = await adapter.tracking(shipment.item_code)
            except DeliveryError as exc:
                report.poll_failures += 1
                log.warning("vnpost_poll_failed", item_code=shipment.item_code, reason=exc.reason)
                continue
            report.new_statuses += await self.record(shipment, tracking.Events, channel="poll")
        for item_code in await self.book.with_unsent_statuses():
            report.sent_on += await self.send_on(item_code)
        if report.polled or report.sent_on:
            log.info("vnpost_polled", **report.__dict__)
        return report

    async def run_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.poll_once()
            except StoreUnavailableError as exc:
                log.warning("vnpost_poll_waiting", error=str(exc))
            except Exception:
                log.exception("vnpost_poll_failed_unexpectedly")


@dataclass
class VNPostTargets:
    """The adapters of every VNPost target of one hub process, and the tracker over them (None when
    no target works); ``problems`` names the targets whose settings are incomplete."""

    adapters: dict[str, VNPostAdapter] = field(default_factory=dict)
    tracker: ShipmentTracker | None = None
    problems: list[str] = field(default_factory=list)

    def not_configured(self) -> str:
        """The sentence to say when there is no working VNPost target."""
        return f"This hub has no working VNPost target. {' '.join(self.problems)}".strip()

    async def aclose(self) -> None:
        if self.tracker is not None:
            await self.tracker.aclose()
        for adapter in self.adapters.values():
            with contextlib.suppress(Exception):
                await adapter.aclose()


def open_vnpost_targets(context: HubContext) -> VNPostTargets:
    """Adapters of every VNPost target of the route files, with the tracker over them.

    A target whose settings are incomplete is left out and named in ``problems`` (its callbacks are
    answered 503 with that sentence) instead of stopping the whole ingress.
    """
    targets = VNPostTargets()
    for target_id in context.targets_using(ADAPTER_NAME):
        try:
            adapter = context.adapter(target_id)
        except ConfigurationError as exc:
            targets.problems.append(str(exc))
            log.error("partner_target_not_configured", target=target_id, error=str(exc))  # noqa: TRY400 - a sentence, no trace
            continue
        if isinstance(adapter, VNPostAdapter):
            targets.adapters[target_id] = adapter
    if targets.adapters:
        targets.tracker = ShipmentTracker(context, targets.adapters)
    return targets
