"""The smallest complete hub plugin: deliver dossier states to a ministry's civil-registry system.

The system takes ``POST <url>`` with the hub's message as JSON and a bearer key, and answers 2xx when it
took it. Everything the plugin needs from the hub comes from ``hub.plugin``, the one module of the core
a plugin imports: the adapter's settings model, the envelope and context it receives, and the one
translation of HTTP failures into the hub's errors (transient: retried; permanent: dead-lettered).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import httpx

from hub.plugin import (
    AdapterConfig,
    BaseUrl,
    DeliveryContext,
    Duration,
    Envelope,
    Plugin,
    Text,
    http_status_failure,
    transport_failure,
)

__all__ = ["CivilRegistryAdapter", "CivilRegistryConfig", "plugin"]

SYSTEM = "the civil-registry system"


class CivilRegistryConfig(AdapterConfig):
    """``config:`` of a ``civil_registry`` target in a route file."""

    adapter: ClassVar[str] = "civil_registry"

    url: BaseUrl
    api_key: Text  # reference an environment variable: ${HUB_CIVIL_REGISTRY_KEY}
    timeout_seconds: Duration = 10.0


class CivilRegistryAdapter:
    """Delivers each message as one POST; the message id is the Idempotency-Key, so a resend is harmless."""

    name = "civil_registry"
    max_batch: Mapping[str, int] = MappingProxyType({})  # one message per call

    def __init__(self, settings: CivilRegistryConfig) -> None:
        self.settings = settings
        self._http = httpx.AsyncClient(
            timeout=settings.timeout_seconds, headers={"Authorization": f"Bearer {settings.api_key}"}
        )

    async def deliver(self, envelope: Envelope, context: DeliveryContext) -> None:
        action = f"{envelope.type} of dossier {envelope.dossier_code} (attempt {context.attempt})"
        body = {"id": envelope.id, "type": envelope.type, "payload": envelope.payload}
        try:
            response = await self._http.post(self.settings.url, json=body, headers={"Idempotency-Key": envelope.id})
        except httpx.HTTPError as exc:
            raise transport_failure(
                exc, system=SYSTEM, action=action, url=self.settings.url, timeout=self.settings.timeout_seconds
            ) from exc
        if response.is_error or response.is_redirect:
            raise http_status_failure(response, system=SYSTEM, action=action)

    async def deliver_batch(self, envelopes: Sequence[Envelope], context: DeliveryContext) -> None:
        for envelope in envelopes:
            await self.deliver(envelope, context)

    async def check(self) -> None:
        """Reachable at all (``hub doctor``): any HTTP answer will do."""
        try:
            await self._http.head(self.settings.url)
        except httpx.HTTPError as exc:
            raise transport_failure(
                exc, system=SYSTEM, action="a check", url=self.settings.url, timeout=self.settings.timeout_seconds
            ) from exc

    async def aclose(self) -> None:
        await self._http.aclose()


def create_adapter(target_id: str, config: Mapping[str, Any]) -> CivilRegistryAdapter:
    return CivilRegistryAdapter(CivilRegistryConfig.read(target_id, config))


plugin = Plugin(name="civil_registry", adapters={"civil_registry": create_adapter})
