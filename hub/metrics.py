"""Prometheus metrics of the hub, on a registry created by the composition root."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hub.store import MessageStore

__all__ = ["HubMetrics", "refresh_store_gauges"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


@dataclass(frozen=True)
class HubMetrics:
    registry: CollectorRegistry
    accepted: Counter
    rejected: Counter
    delivered: Counter
    retried: Counter
    dead_lettered: Counter
    superseded: Counter
    delivery_latency: Histogram
    attempt_duration: Histogram
    queue_depth: Gauge
    dlq_depth: Gauge
    oldest_pending_age: Gauge
    last_success: Gauge
    last_failure: Gauge
    failing: Gauge
    deliveries_open: Gauge
    operator_actions: Counter
    console_logins: Counter
    requests: Counter
    request_duration: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> HubMetrics:
        reg = registry or CollectorRegistry()
        return cls(
            registry=reg,
            accepted=Counter(
                "hub_messages_accepted", "Messages accepted (202) by the ingress.", ["route", "source"],
                registry=reg,
            ),
            rejected=Counter(
                "hub_messages_rejected", "Messages refused by the ingress, by HTTP status.", ["status"],
                registry=reg,
            ),
            delivered=Counter(
                "hub_deliveries_delivered", "Messages a target took.", ["route", "target"], registry=reg
            ),
            retried=Counter(
                "hub_deliveries_retried", "Transient failures scheduled for a retry.",
                ["route", "target", "reason"], registry=reg,
            ),
            dead_lettered=Counter(
                "hub_deliveries_dead_lettered", "Messages moved to a dead-letter queue.",
                ["route", "target", "reason"], registry=reg,
            ),
            superseded=Counter(
                "hub_deliveries_superseded",
                "Older dossier states not sent because a newer one was already delivered.",
                ["route", "target"], registry=reg,
            ),
            delivery_latency=Histogram(
                "hub_delivery_latency_seconds", "From acceptance (202) to the target taking the message.",
                ["target"], buckets=_LATENCY_BUCKETS, registry=reg,
            ),
            attempt_duration=Histogram(
                "hub_delivery_attempt_seconds", "Duration of one call to a target.", ["target", "outcome"],
                buckets=_LATENCY_BUCKETS, registry=reg,
            ),
            queue_depth=Gauge(
                "hub_queue_depth", "Messages waiting in a target queue.", ["target"], registry=reg
            ),
            dlq_depth=Gauge(
                "hub_dlq_depth", "Messages in a target's dead-letter queue.", ["target"], registry=reg
            ),
            oldest_pending_age=Gauge(
                "hub_oldest_undelivered_age_seconds", "Age of the oldest message not yet delivered.",
                ["target"], registry=reg,
            ),
            last_success=Gauge(
                "hub_target_last_success_timestamp_seconds",
                "When a target last took a message (Unix time; 0 = never).", ["target"], registry=reg,
            ),
            last_failure=Gauge(
                "hub_target_last_failure_timestamp_seconds",
                "When a delivery attempt to a target last failed in a way worth retrying (timeout, 5xx, 429; "
                "Unix time; 0 = never). Rejections of one message do not count.", ["target"], registry=reg,
            ),
            failing=Gauge(
                "hub_target_failing",
                "1 when the newest retryable failure of a target is newer than its last success, else 0. "
                "The hub has no circuit breaker; this is the adapter health the console shows.",
                ["target"], registry=reg,
            ),
            deliveries_open=Gauge(
                "hub_deliveries_open",
                "Deliveries not done yet, by state (pending, accepted, retrying, replayed, dead_lettered), "
                "from the message store.", ["target", "route", "state"], registry=reg,
            ),
            operator_actions=Counter(
                "hub_operator_actions", "Replays and discards done in the ops console.", ["action", "target"],
                registry=reg,
            ),
            console_logins=Counter(
                "hub_console_logins", "Console login attempts, by outcome (ok, refused).", ["method", "outcome"],
                registry=reg,
            ),
            requests=Counter(
                "hub_requests", "Request-reply calls (/v1/requests) by outcome (ok, rejected, failed, timeout, "
                "throttled, unavailable).", ["route", "source", "outcome"], registry=reg,
            ),
            request_duration=Histogram(
                "hub_request_seconds", "Time from a request-reply call arriving to its answer.",
                ["route", "outcome"], buckets=_LATENCY_BUCKETS, registry=reg,
            ),
        )  # fmt: skip


async def refresh_store_gauges(metrics: HubMetrics, store: MessageStore, targets: Iterable[str]) -> None:
    """Set the gauges read from the message store: open deliveries by state and each target's health.

    The store sees every worker process, so these are right even when workers run elsewhere.
    """
    counts = await store.open_counts()
    health = {}
    for target in targets:
        success = await store.last_event(target, ["delivered"])
        failure = await store.last_event(target, ["attempt_failed"])
        health[target] = (success.at.timestamp() if success else 0.0, failure.at.timestamp() if failure else 0.0)
    metrics.deliveries_open.clear()
    for (target, route, state), count in counts.items():
        metrics.deliveries_open.labels(target, route, state).set(count)
    for target, (success_at, failure_at) in health.items():
        metrics.last_success.labels(target).set(success_at)
        metrics.last_failure.labels(target).set(failure_at)
        metrics.failing.labels(target).set(1 if failure_at > success_at else 0)
