"""What the console's overview shows: per system, target and route, read from the store and RabbitMQ."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hub.bootstrap import Hub
from hub.errors import StoreUnavailableError
from hub.store import DeliveryState, EventView

__all__ = ["Overview", "RouteRow", "SystemRow", "TargetRow", "build_overview"]

_FAILED_KINDS = ("attempt_failed", "dead_lettered")


@dataclass(frozen=True, slots=True)
class SystemRow:
    system: str
    name: str
    accepted_5m: int
    accepted_1h: int


@dataclass(frozen=True, slots=True)
class RouteRow:
    route: str
    delivered_5m: int
    delivered_1h: int
    failed_1h: int
    in_progress: int
    retrying: int
    dead_letters: int

    @property
    def error_rate(self) -> float | None:
        """Failed attempts / all attempts in the last hour (None without attempts)."""
        attempts = self.delivered_1h + self.failed_1h
        return self.failed_1h / attempts if attempts else None


@dataclass(frozen=True, slots=True)
class TargetRow:
    target: str
    adapter: str
    queue_depth: int | None  # ready in ns.target.<T>; None when RabbitMQ cannot be read
    dlq_depth: int | None  # in ns.dlq.<T>
    oldest_waiting_seconds: float | None
    last_success: EventView | None
    last_failure: EventView | None  # newest retryable failure (attempt_failed)
    last_dead_letter: EventView | None
    routes: list[RouteRow] = field(default_factory=list)

    @property
    def health(self) -> str:
        """``ok``, ``failing`` (the newest retryable failure is newer than the last success) or ``idle``."""
        if self.last_failure is not None and (self.last_success is None or self.last_failure.at > self.last_success.at):
            return "failing"
        return "ok" if self.last_success is not None else "idle"

    @property
    def dead_letters(self) -> int:
        return sum(r.dead_letters for r in self.routes)


@dataclass(frozen=True, slots=True)
class Overview:
    generated_at: datetime
    systems: list[SystemRow]
    targets: list[TargetRow]
    broker_readable: bool
    store_error: str | None = None


async def build_overview(hub: Hub, *, now: datetime | None = None) -> Overview:
    now = now or datetime.now(UTC)
    hour, five = now - timedelta(hours=1), now - timedelta(minutes=5)
    targets = hub.routes.delivery_targets()
    broker_readable = hub.broker.connected
    try:
        open_counts = await hub.store.open_counts()
        accepted_1h = await hub.store.accepted_since(hour)
        accepted_5m = await hub.store.accepted_since(five)
        rows = [await _target_row(hub, target, open_counts, now) for target in targets]
    except StoreUnavailableError as exc:
        return Overview(now, [], [], broker_readable, store_error=str(exc))
    systems = [
        SystemRow(s.id, s.name, accepted_5m.get(s.id, 0), accepted_1h.get(s.id, 0)) for s in hub.routes.systems.values()
    ]
    if broker_readable and any(r.queue_depth is None for r in rows):
        broker_readable = False
    return Overview(now, systems, rows, broker_readable)


async def _target_row(hub: Hub, target: str, open_counts: dict[tuple[str, str, str], int], now: datetime) -> TargetRow:
    store, topology = hub.store, hub.broker.topology
    kinds = ("delivered", *_FAILED_KINDS)
    hour = await store.event_counts_since(target, now - timedelta(hours=1), kinds)
    five = await store.event_counts_since(target, now - timedelta(minutes=5), ["delivered"])
    route_names = [r.name for r in hub.routes.routes if r.mode == "deliver" and target in r.targets]
    route_names += sorted({r for (t, r, _s) in open_counts if t == target} - set(route_names))
    routes = []
    for name in route_names:
        in_progress = sum(
            n for (t, r, s), n in open_counts.items() if t == target and r == name and s in DeliveryState.OPEN
        )
        routes.append(
            RouteRow(
                route=name,
                delivered_5m=five.get((name, "delivered"), 0),
                delivered_1h=hour.get((name, "delivered"), 0),
                failed_1h=sum(hour.get((name, k), 0) for k in _FAILED_KINDS),
                in_progress=in_progress,
                retrying=open_counts.get((target, name, DeliveryState.RETRYING), 0),
                dead_letters=open_counts.get((target, name, DeliveryState.DEAD_LETTERED), 0),
            )
        )
    oldest = await store.oldest_open_accepted_at(target)
    return TargetRow(
        target=target,
        adapter=hub.routes.targets[target].adapter,
        queue_depth=await hub.broker.queue_depth(topology.target_queue(target)),
        dlq_depth=await hub.broker.queue_depth(topology.dlq(target)),
        oldest_waiting_seconds=(now - oldest).total_seconds() if oldest else None,
        last_success=await store.last_event(target, ["delivered"]),
        last_failure=await store.last_event(target, ["attempt_failed"]),
        last_dead_letter=await store.last_event(target, ["dead_lettered"]),
        routes=routes,
    )
