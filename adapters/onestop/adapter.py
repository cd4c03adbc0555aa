"""Delivers hub messages to the provincial one-stop system (payment and postal results).

The one-stop system exposes one endpoint that takes a hub message as JSON
``{"id", "type", "dossier_code", "accepted_at", "payload"}`` with the hub's API key as a bearer token
and the message id as ``Idempotency-Key`` (delivery is at least once: the same id may come twice).
Any 2xx is success; failures are translated by :mod:`hub.http_errors`, through hub.plugin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import httpx
import orjson

from hub.plugin import (
    AdapterConfig,
    BaseUrl,
    DeliveryContext,
    Duration,
    Envelope,
    Secret,
    http_status_failure,
    transport_failure,
)

__all__ = ["OneStopAdapter", "create_adapter"]

SYSTEM = "the one-stop system"


class OneStopAdapter:
    """Target adapter of the one-stop system's receiving endpoint."""

    #: What ``check()`` proves (``hub doctor``).
    check_description = "checked by TCP only (the one-stop system has no health endpoint)"

    name: str = "onestop"
    max_batch: Mapping[str, int] = MappingProxyType({})

    def __init__(self, target_id: str, *, url: str, api_key: str | None, timeout_seconds: float) -> None:
        self.target_id = target_id
        self.url = url
        self.timeout_seconds = timeout_seconds
        headers = {"Accept": "application/json", "User-Agent": "lgsp-hub onestop adapter"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds), headers=headers, follow_redirects=False)

    async def deliver(self, envelope: Envelope, context: DeliveryContext) -> None:
        body = {
            "id": envelope.id,
            "type": envelope.type,
            "dossier_code": envelope.dossier_code,
            "accepted_at": envelope.accepted_at.isoformat(),
            "payload": envelope.payload,
        }
        action = f"delivering {envelope.type} {envelope.id} of dossier {envelope.dossier_code}"
        try:
            response = await self._http.post(
                self.url,
                content=orjson.dumps(body),
                headers={"Content-Type": "application/json", "Idempotency-Key": envelope.id},
            )
        except (httpx.HTTPError, OSError) as exc:
            raise transport_failure(
                exc, system=SYSTEM, action=action, url=self.url, timeout=self.timeout_seconds, setting="url"
            ) from exc
        if not 200 <= response.status_code < 300:
            raise http_status_failure(response, system=SYSTEM, action=action)

    async def deliver_batch(self, envelopes: Sequence[Envelope], context: DeliveryContext) -> None:
        for envelope in envelopes:
            await self.deliver(envelope, context)

    async def check(self) -> None:
        """The one-stop system has no health endpoint the hub may rely on; nothing to check."""

    async def aclose(self) -> None:
        await self._http.aclose()


class OneStopConfig(AdapterConfig):
    """Settings of an ``onestop`` target: the one-stop system's receiving endpoint and the key it gave
    the hub (reference an environment variable)."""

    adapter: ClassVar[str] = "onestop"

    url: BaseUrl
    api_key: Secret | None = None
    timeout_seconds: Duration = 10.0


def create_adapter(target_id: str, config: Mapping[str, Any]) -> OneStopAdapter:
    """Build the adapter of target ``target_id`` from its settings (:class:`OneStopConfig`)."""
    settings = OneStopConfig.read(target_id, config)
    return OneStopAdapter(
        target_id, url=settings.url, api_key=settings.api_key, timeout_seconds=settings.timeout_seconds
    )
