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

    def _take(self, key: tuple[str, str], limit: RateLimit) -> float | None:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(limit.burst), updated=now)
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.updated) * limit.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / limit.rate
