"""The hub's adapter for the national public-services portal (Cổng Dịch vụ công quốc gia)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from pydantic import Field

from adapters.national_portal.client import NationalPortalClient
from adapters.national_portal.mapping import (
    TYPE_DOSSIER_PROGRESS,
    TYPE_DOSSIER_UPSERTED,
    describe_dossiers,
    dossier_from_envelope,
    is_already_registered,
    personal_values,
    progress_request,
    step_from_envelope,
    sync_request,
)
from adapters.national_portal.wire import MAX_PROGRESS_STEPS, SERVICE_SYNC_DOSSIER, SERVICE_UPDATE_PROGRESS
from hub.plugin import (
    AdapterConfig,
    BaseUrl,
    DeliveryContext,
    Duration,
    Envelope,
    PermanentDeliveryError,
    Secret,
    Text,
    redact,
)

__all__ = ["NationalPortalAdapter", "create_adapter"]

#: ``TraCuuHoSo``: look a dossier up; the portal answers its public fields.
SERVICE_LOOK_UP = "TraCuuHoSo"
LOOK_UP_FIELDS = ("MaHoSo", "MaTTHC", "TenTTHC", "ChuHoSo", "NgayTiepNhan", "NgayHenTra", "NgayTra", "TrangThaiHoSo")


class NationalPortalAdapter:
    """Delivers ``dossier.upserted`` (DongBoHoSoMC) and ``dossier.progress`` (CapNhatTienDoHoSoMC).

    A create the portal answers with "đã tồn tại" (the dossier already exists) is resent
    at once as an update; that counts as delivered.
    """

    #: What ``check()`` proves (``hub doctor``).
    check_description = "fetched an access token from its OAuth2 token endpoint"

    name: str = "national_portal"
    max_batch: Mapping[str, int] = MappingProxyType({TYPE_DOSSIER_PROGRESS: MAX_PROGRESS_STEPS})

    def __init__(self, target_id: str, client: NationalPortalClient) -> None:
        self.target_id = target_id
        self._client = client

    async def deliver(self, envelope: Envelope, context: DeliveryContext) -> None:
        if envelope.type == TYPE_DOSSIER_UPSERTED:
            await self._sync_dossier(envelope, updating=context.target_has_dossier)
        elif envelope.type == TYPE_DOSSIER_PROGRESS:
            await self._send_steps([envelope])
        else:
            raise PermanentDeliveryError(
                f"Message {envelope.id} has type {envelope.type!r}, which target {self.target_id} (national "
                f"portal) cannot deliver: it takes {TYPE_DOSSIER_UPSERTED} and {TYPE_DOSSIER_PROGRESS} only. "
                "Fix the route that sends this type to it."
            )

    async def deliver_batch(self, envelopes: Sequence[Envelope], context: DeliveryContext) -> None:
        """Send up to 10 ``dossier.progress`` steps in one CapNhatTienDoHoSoMC call (all or nothing)."""
        if len(envelopes) > MAX_PROGRESS_STEPS:
            raise ValueError(
                f"The national portal takes at most {MAX_PROGRESS_STEPS} progress steps per call, got {len(envelopes)}."
            )
        others = sorted({e.type for e in envelopes if e.type != TYPE_DOSSIER_PROGRESS})
        if others:
            raise ValueError(
                f"Only {TYPE_DOSSIER_PROGRESS} messages can be batched for the national portal, got {others}."
            )
        if envelopes:
            await self._send_steps(envelopes)

    async def already_delivered(
        self, envelope: Envelope, context: DeliveryContext, previous: Envelope | None
    ) -> bool | None:
        """Ask the portal (TraCuuHoSo) whether it already shows this dossier state (see
        :class:`hub.adapter.ConfirmsDelivery`: the worker asks when an earlier attempt may have
        reached the portal unnoticed, i.e. a worker died mid-delivery or an attempt timed out).

        True when the portal's public fields of the dossier equal this message's. None when that
        cannot tell: a progress step (the portal does not list steps) or a state whose public fields
        equal ``previous`` (the state delivered before it).
        """
        if envelope.type != TYPE_DOSSIER_UPSERTED:
            return None
        wanted = _public_fields(sync_request(dossier_from_envelope(envelope), updating=True).to_wire()["data"][0])
        if previous is not None and previous.type == TYPE_DOSSIER_UPSERTED:
            before = sync_request(dossier_from_envelope(previous), updating=True).to_wire()["data"][0]
            if _public_fields(before) == wanted:
                return None
        reply = await self._client.call(
            SERVICE_LOOK_UP,
            {"MaHoSo": wanted["MaHoSo"]},
            subject=f"dossier {wanted['MaHoSo']}",
            personal=personal_values([envelope.payload]),
        )
        if not reply.accepted:
            return False
        shown = (reply.model_extra or {}).get("data")
        return isinstance(shown, dict) and _public_fields(shown) == wanted

    async def check(self) -> None:
        """Fetch a fresh token: proves the gateway is reachable and the credentials are accepted."""
        await self._client.fetch_token()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _sync_dossier(self, envelope: Envelope, *, updating: bool) -> None:
        dossier = dossier_from_envelope(envelope)
        subject = f"dossier {dossier.MaHoSo}"
        personal = personal_values([envelope.payload])
        reply = await self._client.call(
            SERVICE_SYNC_DOSSIER,
            sync_request(dossier, updating=updating).to_wire(),
            subject=subject,
            personal=personal,
        )
        if reply.accepted:
            return
        note = ""
        if not updating and is_already_registered(reply.message):
            reply = await self._client.call(
                SERVICE_SYNC_DOSSIER,
                sync_request(dossier, updating=True).to_wire(),
                subject=subject,
                personal=personal,
            )
            if reply.accepted:
                return
            note = " (sent as an update because the portal already had the dossier)"
        raise PermanentDeliveryError(
            f"The national portal rejected {subject}{note}: {_portal_message(reply.message, personal)} "
            "Fix the dossier.",
            status_code=200,
        )

    async def _send_steps(self, envelopes: Sequence[Envelope]) -> None:
        steps = [step_from_envelope(envelope) for envelope in envelopes]
        codes = describe_dossiers(step.MaHoSo for step in steps)
        subject = f"the progress step of {codes}" if len(steps) == 1 else f"{len(steps)} progress steps of {codes}"
        reply = await self._client.call(SERVICE_UPDATE_PROGRESS, progress_request(steps).to_wire(), subject=subject)
        if not reply.accepted:
            raise PermanentDeliveryError(
                f"The national portal rejected {subject}: {_portal_message(reply.message, ())} Fix the dossier.",
                status_code=200,
            )


def _public_fields(dossier: Mapping[str, Any]) -> dict[str, Any]:
    return {key: dossier.get(key) for key in LOOK_UP_FIELDS}


def _portal_message(message: str | None, personal: Sequence[str]) -> str:
    text = redact(message.strip(), personal) if message and message.strip() else "(the portal gave no message)"
    return text if text.endswith((".", "!", "?")) else f"{text}."


class NationalPortalConfig(AdapterConfig):
    """Settings of a ``national_portal`` target: the NGSP/LGSP gateway's address and the OAuth2 client
    credentials it issued for the hub."""

    adapter: ClassVar[str] = "national_portal"

    base_url: BaseUrl
    client_id: Text
    client_secret: Secret
    token_url: BaseUrl | None = None  # default: <base_url>/oauth2/token
    timeout_seconds: Duration = 10.0
    max_connections: int = Field(default=50, ge=1, le=10_000)


def create_adapter(target_id: str, config: Mapping[str, Any]) -> NationalPortalAdapter:
    """Build the adapter of target ``target_id`` from its settings (:class:`NationalPortalConfig`)."""
    settings = NationalPortalConfig.read(target_id, config)
    client = NationalPortalClient(
        base_url=settings.base_url,
        token_url=settings.token_url,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        timeout_seconds=settings.timeout_seconds,
        max_connections=settings.max_connections,
    )
    return NationalPortalAdapter(target_id, client)
