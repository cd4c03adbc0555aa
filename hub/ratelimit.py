"""Token buckets in front of request-reply and login routes (``rate_limit:`` in a route file).

The national systems throttle every province; the hub spends its quota fairly by giving each
calling system (``per: source``) or the whole route (``per: route``) a bucket of ``burst``
tokens refilled at ``rate`` per second. A request that finds the bucket empty is answered
429 with ``Retry-After`` and never reaches the target.

The buckets live in the memory of each ingress process: with N ingress processes behind a
load balancer the effective limit is up to N times the configured one. Set the route's rate
to the national quota divided by the number of ingress processes (see docs/request-reply.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hub.routing import RateLimit, Route

__all__ = ["RateLimiter"]

#: Buckets kept before idle ones are dropped (each caller's address on an open endpoint has one).
_MAX_BUCKETS = 10_000
_IDLE_SECONDS = 60.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """In-process token buckets, one per (route, calling system) or per route."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def try_acquire(self, route: Route, source: str) -> float | None:
        """Take one token for ``source`` on ``route``: ``None`` when allowed, else seconds until one is free."""
        limit = route.rate_limit
        if limit is None:
            return None
        key = (route.name, source if limit.per == "source" else "*")
        return self._take(key, limit)

    def try_take(self, key: str, *, rate: float, burst: int) -> float | None:
        """Take one token from the bucket ``key`` (a client's address on an endpoint anyone may call) that
        refills at ``rate`` per second up to ``burst``: ``None`` when allowed, else seconds until one is free."""
        return self._take(("", key), RateLimit(rate=rate, burst=burst))

    def _take(self, key: tuple[str, str], limit: RateLimit) -> float | None:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(tokens=float(limit.burst), updated=now)
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.updated) * limit.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / limit.rate

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets untouched for a minute (full again at any usual rate), so that many different
        callers (addresses) do not grow the table without end; a bucket dropped early only starts full."""
        idle = [key for key, bucket in self._buckets.items() if now - bucket.updated > _IDLE_SECONDS]
        for key in idle or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]
