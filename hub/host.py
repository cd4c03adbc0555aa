"""The core's side of the plugin interface: :class:`PluginHost` is the :class:`hub.plugin.HubContext` a
plugin receives, over one process's :class:`hub.bootstrap.Hub` (which builds it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.audit import AuditFacts, AuditLog
from hub.auth import SystemKeys
from hub.plugin import AuditRecord, DossierState, OriginatedMessage
from hub.routing import Route, SystemSpec
from hub.services import dossier_states, originate
from hub.settings import HubSettings

if TYPE_CHECKING:
    from hub.bootstrap import Hub

__all__ = ["PluginHost"]


class PluginHost:
    """What the core offers the plugins of one hub process (:class:`hub.plugin.HubContext`)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._keys: SystemKeys | None = None
        self._audit = AuditLog(hub.store.engine)

    @property
    def settings(self) -> HubSettings:
        return self.hub.settings

    @property
    def schemas(self) -> Mapping[str, type[BaseModel]]:
        return self.hub.schemas

    @property
    def engine(self) -> AsyncEngine:
        return self.hub.store.engine

    def targets_using(self, adapter: str) -> list[str]:
        return [t.id for t in self.hub.routes.targets.values() if t.adapter == adapter]

    def adapter(self, target_id: str) -> object:
        return self.hub.build_adapter(target_id)

    def routes_of_mode(self, mode: str) -> Mapping[str, Route]:
        return {r.name: r for r in self.hub.routes.routes if r.mode == mode}

    def system(self, system_id: str) -> SystemSpec | None:
        return self.hub.routes.systems.get(system_id)

    def identify(self, authorization: str | None) -> SystemSpec | None:
        if self._keys is None:  # read once, when the first request needs them
            self._keys = SystemKeys.for_hub(self.hub)
        return self._keys.identify(authorization)

    async def originate(
        self, *, message_type: str, payload: dict[str, Any], source: str, idempotency_key: str
    ) -> OriginatedMessage | None:
        return await originate(
            self.hub, message_type=message_type, payload=payload, source=source, idempotency_key=idempotency_key
        )

    async def latest_state(self, dossier_code: str) -> DossierState | None:
        states = await dossier_states(self.hub.store.engine, dossier_code, limit=1)
        return states[0] if states else None

    async def dossier_states(
        self,
        dossier_code: str,
        *,
        source: str | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int | None = None,
    ) -> list[DossierState]:
        return await dossier_states(
            self.hub.store.engine, dossier_code, source=source, after_seq=after_seq, before_seq=before_seq, limit=limit
        )

    async def audit(self, record: AuditRecord) -> None:
        facts = AuditFacts(
            official=record.official, agency=record.agency, purpose=record.purpose, subject=record.subject
        )
        await self._audit.record(
            request_id=record.request_id, kind=record.kind, route=record.route, system=record.system, facts=facts,
            outcome=record.outcome, detail=record.detail,
        )  # fmt: skip
