"""The delivery worker of one target: consume, deliver through the adapter, retry or dead-letter.

Guarantees (see README, "Delivery guarantee"):

* at-least-once to the target: a message is acknowledged to RabbitMQ only after the
  target took it, or after its retry copy / dead-letter copy was confirmed by the broker;
* deduplicated in the hub: before calling the target the worker reads the store, and a
  redelivered message whose delivery is already recorded is acknowledged without a call;
  copies of one message held at once are delivered once. A message in doubt (its worker died
  while sending it, or an attempt timed out) is first looked up at the target when the adapter
  can (:class:`hub.adapter.ConfirmsDelivery`); otherwise it is sent again, so only such a
  message can reach the target twice (see docs/reliability.md);
* per-dossier order for ``ordering: latest-state`` routes: a dossier's older state is never
  sent after a newer one was delivered (it is marked superseded). A message that the target
  rejects while an earlier message of its dossier is still on its way (a progress step before
  the dossier's creation) is retried, not dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from aio_pika.abc import AbstractIncomingMessage
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from hub.adapter import Adapter, ConfirmsDelivery, DeliveryContext
from hub.broker import ATTEMPT_HEADER, REASON_HEADER, Broker, delivery_headers
from hub.consumer import RECORD_SECONDS, QueueConsumer
from hub.decisions import Attempt, Retry, after_failure, in_doubt
from hub.envelope import Envelope, decode_envelope, encode_envelope
from hub.errors import (
    BrokerUnavailableError,
    PermanentDeliveryError,
    StoreUnavailableError,
    TransientDeliveryError,
)
from hub.metrics import HubMetrics
from hub.routing import Route, RouteTable
from hub.store import DeliveryState, MessageStore

__all__ = ["IN_DOUBT_HEADER", "REPLAY_HEADER", "TargetWorker", "replay_headers"]

log = structlog.get_logger(__name__)

REPLAY_HEADER = "x-hub-replay"


def replay_headers(envelope: Envelope) -> dict[str, Any]:
    """Headers of a replayed copy: a first attempt again, marked as a replay (the worker then takes it
    although the delivery was dead-lettered)."""
    return {**delivery_headers(envelope, attempt=1), REPLAY_HEADER: 1}


#: Set on a retry copy when an earlier attempt may have reached the target unseen (see ``_in_doubt``).
IN_DOUBT_HEADER = "x-hub-in-doubt"
T = TypeVar("T")


@dataclass(slots=True)
class _Pending:
    message: AbstractIncomingMessage
    envelope: Envelope
    route: Route
    attempt: int
    #: The store says an earlier attempt may have reached the target unseen (see ``_in_doubt``).
    stored_doubt: bool = False
    #: The dossier's cursor after this message was recorded as delivered (latest-state routes).
    cursor_after: int | None = None


class TargetWorker:
    """Consumes ``ns.target.<T>`` and delivers each message to target ``T`` through its adapter."""

    def __init__(
        self,
        *,
        target: str,
        adapter: Adapter,
        routes: RouteTable,
        store: MessageStore,
        broker: Broker,
        metrics: HubMetrics,
        prefetch: int,
        delivery_timeout: float,
        batch_linger_ms: int = 20,
        store_retry_seconds: float = 120.0,
        overdue_retry_after: float = 15.0,
        shutdown_grace: float = 10.0,
    ) -> None:
        self.target = target
        self.adapter = adapter
        self.routes = routes
        self.store = store
        self.broker = broker
        self.metrics = metrics
        self.prefetch = prefetch
        self.delivery_timeout = delivery_timeout
        self.batch_linger = batch_linger_ms / 1000
        self.store_retry_seconds = store_retry_seconds
        self.overdue_retry_after = timedelta(seconds=overdue_retry_after)
        self.shutdown_grace = shutdown_grace
        self._consumer = QueueConsumer(
            broker, broker.topology.target_queue(target),
            arguments={"x-queue-type": broker.topology.queue_type}, prefetch=prefetch,
            handle=self._handle, on_error=self._on_error,
        )  # fmt: skip
        self._overdue_watch: asyncio.Task[None] | None = None
        self._dossier_locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = defaultdict(int)
        self._batches: dict[str, list[_Pending]] = defaultdict(list)
        self._batch_timers: dict[str, asyncio.TimerHandle] = {}
        self._held: dict[str, AbstractIncomingMessage] = {}
        self.last_success_at: datetime | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Declare the target's queues and start consuming."""
        await self.broker.declare_target(self.target, self.routes.retry_delays(self.target))
        await self._consumer.start()
        self._overdue_watch = asyncio.create_task(self._watch_overdue_retries())
        log.info("worker_started", target=self.target, prefetch=self.prefetch)

    async def stop(self) -> None:
        """Stop consuming; let the deliveries under way finish within ``shutdown_grace`` seconds, then cancel
        those left (a delivery cut off mid-call is recorded in doubt: :meth:`_record_interrupted`); close the
        channel, so RabbitMQ gives every unacknowledged message out again. Takes at most the grace (1 s at
        least) + 2 s."""
        if self._overdue_watch is not None:
            self._overdue_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._overdue_watch
        started = time.monotonic()
        await self._consumer.stop_consuming()
        for message_type in list(self._batches):
            self._flush_soon(message_type, delay=0)
        cancelled = await self._consumer.finish(max(self.shutdown_grace - (time.monotonic() - started), 0.0))
        if cancelled:
            log.warning(
                "worker_stop_cancelled_deliveries", target=self.target, cancelled=cancelled,
                grace_seconds=self.shutdown_grace,
                detail=f"{cancelled} delivery(ies) to {self.target} did not finish within the "
                f"{self.shutdown_grace:g} s of HUB_SHUTDOWN_GRACE_SECONDS; their messages go back to RabbitMQ "
                "unacknowledged and are delivered again by the next worker of this target.",
            )  # fmt: skip
        log.info("worker_stopped", target=self.target)

    async def _watch_overdue_retries(self) -> None:
        """Send again a retry whose copy has not come back from its retry tier long after it was due.

        A quorum queue may keep an expired message instead of dead-lettering it when nothing else
        happens on the queue: after a broker restart, or at the end of a long drain with one retry
        left (rabbitmq/rabbitmq-server#10718). The store knows the retry is overdue, so the copy is
        published again; the store's claim lets one process of this target do it, and if the first
        copy turns up after all, the worker finds the message delivered and drops it."""
        interval = min(5.0, self.overdue_retry_after.total_seconds() / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.resend_overdue_retries()
            except (StoreUnavailableError, BrokerUnavailableError) as exc:
                log.warning("overdue_retries_waiting", target=self.target, error=str(exc))
            except Exception:  # a bug here must not end the watch; the next round tries again
                log.exception("overdue_retries_failed", target=self.target)

    async def resend_overdue_retries(self) -> int:
        """One round of :meth:`_watch_overdue_retries`; the number of copies sent again.

        Only once the target queue has no message ready: a retry copy back from its tier waits at the
        tail of that queue, and behind a backlog it is late, not lost. Sending it again then would add
        a copy every round for as long as the backlog lasts, and the copies would lengthen the backlog.
        A copy this worker holds right now is not sent again either.
        """
        overdue = await self.store.overdue_retries(self.overdue_retry_after, targets=[self.target])
        overdue = [item for item in overdue if not self._holds(item.envelope.id)]
        if not overdue:
            return 0
        waiting = await self.broker.queue_depth(self.broker.topology.target_queue(self.target))
        if waiting is None:  # the same event as the watch's when the broker or the store is away
            log.warning("overdue_retries_waiting", target=self.target, error="The target queue's depth cannot be read.")
            return 0
        if waiting:  # the copies may be in the backlog
            log.info("overdue_retries_behind_backlog", target=self.target, overdue=len(overdue), waiting=waiting)
            return 0
        count = 0
        for envelope, _target, attempts, replayed in overdue:
            if not await self.store.claim_overdue_retry(envelope.id, self.target, overdue_by=self.overdue_retry_after):
                continue  # delivered meanwhile, or another process of this target sends it
            # A replay whose copy never came (hub replay died between its record and its publish) is sent
            # as the replay would have sent it: attempts start again.
            headers = replay_headers(envelope) if replayed else delivery_headers(envelope, attempt=attempts + 1)
            await self.broker.publish(
                encode_envelope(envelope), routing_key=self.target, message_id=envelope.id, headers=headers
            )
            count += 1
            event = "overdue_replay_resent" if replayed else "overdue_retry_resent"
            log.warning(event, message_id=envelope.id, target=self.target, attempt=headers[ATTEMPT_HEADER])
        return count

    # ------------------------------------------------------------------ consuming

    async def _on_error(self, message: AbstractIncomingMessage) -> None:
        """Nothing may take the worker down: return the message to the queue after a pause."""
        log.exception("worker_unexpected_error")
        await asyncio.sleep(1)
        with contextlib.suppress(Exception):
            await message.nack(requeue=True)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        headers = message.headers or {}
        try:
            envelope = decode_envelope(message.body)
        except ValueError as exc:
            await self._dead_letter_undecodable(message, str(exc))
            return
        attempt = _int_header(headers.get(ATTEMPT_HEADER), default=1)
        route = self.routes.route_for_target(envelope.type, self.target)
        structlog.contextvars.bind_contextvars(
            message_id=envelope.id,
            route=route.name if route else None,
            target=self.target,
            dossier=envelope.dossier_code,
            attempt=attempt,
        )
        if route is None:
            await self._dead_letter(
                message, envelope, attempt, "-",
                f"Message {envelope.id} of type '{envelope.type}' reached target '{self.target}', but no route "
                "carries that type to this target any more. Add the route back and replay it, or discard it.",
            )  # fmt: skip
            return
        batched = self.adapter.max_batch.get(envelope.type, 1) > 1
        if route.ordering == "latest-state" and envelope.dossier_code and not batched:
            # The dossier's lock covers the store read, so the cursor read with the delivery is current
            # (other processes are covered by _repair_if_overtaken).
            async with self._dossier_lock(envelope.dossier_code):
                await self._handle_stored(message, envelope, route, attempt, latest_state=True)
        else:
            await self._handle_stored(message, envelope, route, attempt, latest_state=False)

    async def _handle_stored(
        self, message: AbstractIncomingMessage, envelope: Envelope, route: Route, attempt: int, *, latest_state: bool
    ) -> None:
        cursor: int | None = None
        try:
            if latest_state:
                # One read for both: a read session costs the worker more than its share of a grouped write.
                delivery, cursor = await self.store.delivery_and_cursor(
                    envelope.id, self.target, envelope.dossier_code or ""
                )
            else:
                delivery = await self.store.delivery(envelope.id, self.target)
        except StoreUnavailableError as exc:
            log.warning("store_unavailable_requeue", error=str(exc))
            await asyncio.sleep(2)
            await message.nack(requeue=True)
            return
        if delivery is None:
            log.warning(
                "message_not_in_store",
                detail="The ingress refused this message (503) after publishing it; it is not delivered.",
            )
            await message.ack()
            return
        replay = bool((message.headers or {}).get(REPLAY_HEADER))
        if delivery.state in DeliveryState.FINAL or (delivery.state == DeliveryState.DEAD_LETTERED and not replay):
            log.info("duplicate_skipped", state=delivery.state)
            await message.ack()
            return
        if self._holds_other_copy(envelope.id, message):
            log.info("duplicate_copy_skipped", detail="Another copy of this message is being delivered now.")
            await message.ack()
            return
        pending = _Pending(message, envelope, route, attempt, stored_doubt=delivery.in_doubt)
        if self.adapter.max_batch.get(envelope.type, 1) > 1:
            self._add_to_batch(pending)
        elif latest_state:
            await self._deliver_latest_state(pending, cursor)
        else:
            await self._deliver_one(pending, DeliveryContext(self.target, attempt))

    # ------------------------------------------------------------------ delivering

    async def _deliver_latest_state(self, pending: _Pending, cursor: int | None) -> None:
        """Deliver a full dossier state unless a newer one already reached the target (``cursor``,
        read under the dossier's lock)."""
        envelope = pending.envelope
        if cursor is not None and cursor == envelope.seq:
            log.info("duplicate_skipped", state=DeliveryState.DELIVERED)
            await pending.message.ack()
            return
        if cursor is not None and cursor > envelope.seq:
            await self._store_call(
                lambda: self.store.mark_superseded(envelope.id, self.target, attempt=pending.attempt, newer_seq=cursor)
            )
            self.metrics.superseded.labels(pending.route.name, self.target).inc()
            log.info("superseded", newer_seq=cursor)
            await pending.message.ack()
            return
        previous = None
        if _in_doubt(pending) and cursor is not None and isinstance(self.adapter, ConfirmsDelivery):
            previous = await self._store_call(lambda: self.store.message_at_seq(cursor))
        context = DeliveryContext(self.target, pending.attempt, target_has_dossier=cursor is not None)
        delivered = await self._deliver_one(pending, context, advance_cursor=True, previous=previous)
        if delivered:
            await self._repair_if_overtaken(envelope, pending.cursor_after)

    async def _repair_if_overtaken(self, envelope: Envelope, cursor: int | None) -> None:
        """Another worker process may have delivered a newer state while this one was sending an
        older one (``cursor``, as recording this delivery left it, is then newer); if so, send the
        newest state again so the target ends on it."""
        if cursor is None or cursor <= envelope.seq:
            return
        newest = await self._store_call(lambda: self.store.message_at_seq(cursor))
        if newest is None:
            return
        log.warning("overtaken_resending_newest", newest_seq=cursor)
        with contextlib.suppress(TransientDeliveryError, PermanentDeliveryError, asyncio.TimeoutError):
            await asyncio.wait_for(
                self.adapter.deliver(newest, DeliveryContext(self.target, 1, target_has_dossier=True)),
                self.delivery_timeout,
            )

    async def _deliver_one(
        self,
        pending: _Pending,
        context: DeliveryContext,
        *,
        advance_cursor: bool = False,
        previous: Envelope | None = None,
    ) -> bool:
        envelope = pending.envelope
        if _in_doubt(pending) and await self._already_at_target(envelope, context, previous):
            log.info("confirmed_by_target", detail="The target already had this message; it was not sent again.")
        else:
            started, started_at = time.perf_counter(), datetime.now(UTC)
            try:
                await asyncio.wait_for(self.adapter.deliver(envelope, context), self.delivery_timeout)
            except asyncio.CancelledError:
                await self._record_interrupted([pending])
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is classified below
                self._observe_attempt(started, "failed")
                await self._on_failure(pending, await self._unless_overtaken(envelope, exc, started_at))
                return False
            self._observe_attempt(started, "delivered")
        seq = envelope.seq if advance_cursor else None
        pending.cursor_after = await self._store_call(
            lambda: self.store.mark_delivered(
                envelope.id, self.target, attempt=pending.attempt, dossier_code=envelope.dossier_code, seq=seq
            )
        )
        self._count_delivered(pending)
        await pending.message.ack()
        log.info("delivered")
        return True

    async def _record_interrupted(self, batch: list[_Pending]) -> None:
        """The worker was stopped (its grace period over) while this attempt was under way: the target may
        have taken it without the hub seeing the answer, as when an attempt times out. Nothing is marked
        delivered, retried or dead-lettered and the message is not acknowledged, so RabbitMQ gives it out
        again; the store keeps the doubt, so that copy and every later one is looked up at the target
        (when the adapter can) before it is sent again. A store that cannot be written within
        ``RECORD_SECONDS`` is skipped: the redelivered copy is in doubt anyway (:func:`_in_doubt`)."""
        ids = [pending.envelope.id for pending in batch]
        log.warning(
            "attempt_interrupted", message_ids=ids,
            detail=f"The worker stopped while this attempt to {self.target} was under way; the target may "
            "have taken it. The message goes back to RabbitMQ and is delivered again, looked up at the target "
            "first when the target allows it.",
        )  # fmt: skip
        try:
            async with asyncio.timeout(RECORD_SECONDS):
                await self.store.mark_in_doubt(ids, self.target)
        except (StoreUnavailableError, TimeoutError) as exc:
            log.warning("attempt_interrupted_not_recorded", message_ids=ids, error=str(exc) or type(exc).__name__)

    async def _already_at_target(self, envelope: Envelope, context: DeliveryContext, previous: Envelope | None) -> bool:
        """For a message in doubt (see :func:`_in_doubt`): does the target already have it?"""
        if not isinstance(self.adapter, ConfirmsDelivery):
            return False
        try:
            found = await asyncio.wait_for(
                self.adapter.already_delivered(envelope, context, previous), self.delivery_timeout
            )
        except Exception as exc:  # noqa: BLE001 - cannot tell: send it again (at-least-once)
            log.warning("confirm_failed", error_type=type(exc).__name__, error=str(exc))
            return False
        return found is True

    async def _unless_overtaken(self, envelope: Envelope, exc: Exception, started_at: datetime) -> Exception:
        """A rejection of a message that overtook an earlier one of the same dossier (a progress step
        sent before the dossier's creation) may be caused by that order: retry it instead."""
        if not isinstance(exc, PermanentDeliveryError) or not envelope.dossier_code:
            return exc
        dossier = envelope.dossier_code
        if await self._store_call(lambda: self.store.earlier_in_flight(self.target, dossier, envelope.seq, started_at)):
            log.info("rejected_while_earlier_in_flight", reason=exc.reason)
            return TransientDeliveryError(
                f"{exc.reason} An earlier message of dossier {dossier} was still on its way to {self.target}, "
                "so the hub sends this one again after it.",
                status_code=exc.status_code,
            )
        return exc

    def _observe_attempt(self, started: float, outcome: str) -> None:
        self.metrics.attempt_duration.labels(self.target, outcome).observe(time.perf_counter() - started)

    def _count_delivered(self, pending: _Pending) -> None:
        self.last_success_at = datetime.now(UTC)
        self.metrics.last_success.labels(self.target).set(self.last_success_at.timestamp())
        self.metrics.failing.labels(self.target).set(0)
        self.metrics.delivered.labels(pending.route.name, self.target).inc()
        latency = (self.last_success_at - pending.envelope.accepted_at).total_seconds()
        self.metrics.delivery_latency.labels(self.target).observe(max(latency, 0.0))

    async def _on_failure(self, pending: _Pending, exc: BaseException) -> None:
        attempt = Attempt(
            pending.envelope.id, self.target, self.adapter.name, pending.attempt, _in_doubt(pending),
            self.delivery_timeout,
        )  # fmt: skip
        decision = after_failure(attempt, pending.route.retry, exc)
        if isinstance(decision, Retry):
            await self._schedule_retry(pending, decision)
            return
        if decision.kind == "adapter_error":
            log.error("adapter_raised", error_type=type(exc).__name__, error=str(exc))
        await self._dead_letter(
            pending.message, pending.envelope, pending.attempt, pending.route.name, decision.reason,
            kind=decision.kind, in_doubt=decision.in_doubt,
        )  # fmt: skip

    async def _schedule_retry(self, pending: _Pending, retry: Retry) -> None:
        envelope, delay, doubt = pending.envelope, retry.delay, retry.in_doubt
        queue = self.broker.topology.retry_queue(self.target, delay)
        # The store keeps the doubt for every later copy (the overdue watch's, a replay's); the header
        # covers a store that could not be written just now.
        # The store is told first. Were the retry copy published first, a store write slower than the
        # retry tier would let the copy come back while this original is still unacknowledged: the copy
        # would be taken for a duplicate and acked, then the original acked, and the message would stay
        # "retrying" with no copy left anywhere. If the publish below fails, the original is not acked
        # and goes back to the queue, so "retrying" is still true.
        await self._store_call(
            lambda: self.store.mark_retrying(
                envelope.id,
                self.target,
                attempt=pending.attempt,
                delay_seconds=delay,
                reason=retry.reason,
                in_doubt=doubt,
            ),
            required=False,
        )
        await self._broker_call(
            pending.message,
            lambda: self.broker.publish(
                encode_envelope(envelope),
                routing_key=queue,
                message_id=envelope.id,
                headers={
                    **delivery_headers(envelope, attempt=pending.attempt + 1),
                    REASON_HEADER: retry.reason[:1000],
                    IN_DOUBT_HEADER: int(doubt),
                },
                to_default_exchange=True,
            ),
        )
        # From here the retry copy carries the message: it must not be taken for a duplicate of this
        # original, even if acknowledging the original is slow.
        self._release(envelope.id, pending.message)
        self.metrics.retried.labels(pending.route.name, self.target, retry.label).inc()
        self.metrics.last_failure.labels(self.target).set(time.time())
        self.metrics.failing.labels(self.target).set(1)
        log.warning("retry_scheduled", delay_seconds=delay, reason=retry.reason)
        await pending.message.ack()

    async def _dead_letter(
        self,
        message: AbstractIncomingMessage,
        envelope: Envelope,
        attempt: int,
        route_name: str,
        reason: str,
        *,
        kind: str = "rejected",
        in_doubt: bool = False,
    ) -> None:
        await self._broker_call(
            message,
            lambda: self.broker.publish(
                encode_envelope(envelope),
                routing_key=self.broker.topology.dlq(self.target),
                message_id=envelope.id,
                headers={**delivery_headers(envelope, attempt=attempt), REASON_HEADER: reason[:4000]},
                to_default_exchange=True,
            ),
        )
        await self._store_call(
            lambda: self.store.mark_dead_lettered(
                envelope.id, self.target, attempt=attempt, reason=reason, in_doubt=in_doubt
            ),
            required=False,
        )
        self.metrics.dead_lettered.labels(route_name, self.target, kind).inc()
        log.error("dead_lettered", reason=reason)
        await message.ack()

    async def _dead_letter_undecodable(self, message: AbstractIncomingMessage, problem: str) -> None:
        message_id = message.message_id or "(no id)"
        reason = (
            f"A broker message ({message_id}) on target '{self.target}' could not be read: {problem} "
            "It was not sent; it was published to the queue without using the ingress."
        )
        await self._broker_call(
            message,
            lambda: self.broker.publish(
                message.body,
                routing_key=self.broker.topology.dlq(self.target),
                message_id=message_id,
                headers={REASON_HEADER: reason[:4000]},
                to_default_exchange=True,
            ),
        )
        self.metrics.dead_lettered.labels("-", self.target, "undecodable").inc()
        log.error("dead_lettered_undecodable", reason=reason)
        await message.ack()

    # ------------------------------------------------------------------ batching

    def _add_to_batch(self, pending: _Pending) -> None:
        batch = self._batches[pending.envelope.type]
        batch.append(pending)
        limit = self.adapter.max_batch.get(pending.envelope.type, 1)
        if len(batch) >= limit:
            self._flush_soon(pending.envelope.type, delay=0)
        elif pending.envelope.type not in self._batch_timers:
            self._flush_soon(pending.envelope.type, delay=self.batch_linger)

    def _flush_soon(self, message_type: str, *, delay: float) -> None:
        timer = self._batch_timers.pop(message_type, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        if delay <= 0:
            self._spawn_flush(message_type)
        else:
            self._batch_timers[message_type] = loop.call_later(delay, self._spawn_flush, message_type)

    def _spawn_flush(self, message_type: str) -> None:
        self._batch_timers.pop(message_type, None)
        limit = self.adapter.max_batch.get(message_type, 1)
        batch, self._batches[message_type] = (
            self._batches[message_type][:limit],
            self._batches[message_type][limit:],
        )
        if self._batches[message_type]:
            self._flush_soon(message_type, delay=self.batch_linger)
        if batch:
            self._consumer.track(asyncio.get_running_loop().create_task(self._flush(batch)))

    async def _flush(self, batch: list[_Pending]) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(target=self.target, batch_size=len(batch))
        try:
            await self._flush_batch(batch)
        except Exception:
            log.exception("batch_unexpected_error")
            for pending in batch:
                with contextlib.suppress(Exception):
                    await pending.message.nack(requeue=True)

    async def _flush_batch(self, batch: list[_Pending]) -> None:
        if len(batch) == 1:
            await self._deliver_one(batch[0], DeliveryContext(self.target, batch[0].attempt))
            return
        context = DeliveryContext(self.target, max(p.attempt for p in batch))
        started = time.perf_counter()
        try:
            await asyncio.wait_for(
                self.adapter.deliver_batch([p.envelope for p in batch], context), self.delivery_timeout
            )
        except asyncio.CancelledError:
            await self._record_interrupted(batch)
            raise
        except PermanentDeliveryError:
            # One bad step must not take nine good ones with it: send each alone to find it.
            self._observe_attempt(started, "failed")
            for pending in batch:
                await self._deliver_one(pending, DeliveryContext(self.target, pending.attempt))
            return
        except Exception as exc:  # noqa: BLE001 - classified per message
            self._observe_attempt(started, "failed")
            for pending in batch:
                await self._on_failure(pending, exc)
            return
        self._observe_attempt(started, "delivered")
        await self._store_call(
            lambda: self.store.mark_delivered_many(
                [p.envelope.id for p in batch], self.target, attempts=[p.attempt for p in batch]
            )
        )
        for pending in batch:
            self._count_delivered(pending)
            await pending.message.ack()
        log.info("batch_delivered")

    # ------------------------------------------------------------------ helpers

    def _holds_other_copy(self, message_id: str, message: AbstractIncomingMessage) -> bool:
        """True when this worker already holds another copy of the message, unsettled on a live channel.

        Copies arise when a message is published twice (a client retry or the outbox relay after the
        ingress died before recording the broker's confirm). The copy in hand settles the message
        (delivered, retried, dead-lettered, or back to the queue), so the other is acknowledged.
        """
        if self._held.get(message_id) is not message and self._holds(message_id):
            return True
        self._held[message_id] = message
        if len(self._held) > 4 * self.prefetch + 100:
            self._held = {k: m for k, m in self._held.items() if not m.processed and _channel_open(m)}
        return False

    def _holds(self, message_id: str) -> bool:
        """True when this worker holds a copy of the message, unsettled on a live channel."""
        held = self._held.get(message_id)
        return held is not None and not held.processed and _channel_open(held)

    def _release(self, message_id: str, message: AbstractIncomingMessage) -> None:
        if self._held.get(message_id) is message:
            del self._held[message_id]

    @contextlib.asynccontextmanager
    async def _dossier_lock(self, dossier_code: str) -> AsyncIterator[None]:
        lock = self._dossier_locks.setdefault(dossier_code, asyncio.Lock())
        self._lock_users[dossier_code] += 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[dossier_code] -= 1
            if self._lock_users[dossier_code] == 0:
                del self._lock_users[dossier_code]
                self._dossier_locks.pop(dossier_code, None)

    async def _store_call(self, call: Callable[[], Awaitable[T]], *, required: bool = True) -> T:
        """Run a store call, retrying while the database is unreachable (it may be restarting).

        With ``required=False`` a store that stays down is logged and the step skipped: the
        broker already holds the message, and the next step records its state.
        """
        try:  # the usual case, without setting up a retry loop for every call
            return await call()
        except StoreUnavailableError:
            log.warning("store_unavailable_retrying")
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(StoreUnavailableError),
                wait=wait_exponential(multiplier=0.2, max=5),
                stop=stop_after_delay(self.store_retry_seconds),
                reraise=True,
            ):
                with attempt:
                    return await call()
        except StoreUnavailableError:
            if required:
                raise
            log.exception("store_write_skipped")
        return None  # type: ignore[return-value]

    async def _broker_call(self, message: AbstractIncomingMessage, call: Callable[[], Awaitable[None]]) -> None:
        """Publish a retry or dead-letter copy; if the broker refuses, the original is not acked
        (it returns to the queue when the channel closes) so nothing is lost."""
        try:
            await call()
        except BrokerUnavailableError:
            log.exception("broker_publish_failed_message_kept")
            raise


def _in_doubt(pending: _Pending) -> bool:
    """The message may be at the target already (:func:`hub.decisions.in_doubt`)."""
    header = bool((pending.message.headers or {}).get(IN_DOUBT_HEADER))
    return in_doubt(stored=pending.stored_doubt, redelivered=bool(pending.message.redelivered), header=header)


def _channel_open(message: AbstractIncomingMessage) -> bool:
    try:
        return not message.channel.is_closed
    except Exception:  # noqa: BLE001 - aio-pika raises when the channel is gone
        return False


def _int_header(value: Any, *, default: int) -> int:
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return default
