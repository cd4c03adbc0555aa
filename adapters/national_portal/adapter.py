"""The hub's adapter for the national public-services portal (Cổng Dịch vụ công quốc gia)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from adapters.national_portal.client import NationalPortalClient
from adapters.national_portal.mapping import (
    TYPE_DOSSIER_PROGRESS,
    TYPE_DOSSIER_UPSERTED,
    describe_dossiers,
    dossier_from_envelope,
    is_already_registered,
    personal_values,
    progress_request,
    redact,
    step_from_envelope,
    sync_request,
)
from adapters.national_portal.wire import MAX_PROGRESS_STEPS, SERVICE_SYNC_DOSSIER, SERVICE_UPDATE_PROGRESS
from hub.adapter import DeliveryContext
from hub.envelope import Envelope
from hub.errors import ConfigurationError, PermanentDeliveryError

__all__ = ["NationalPortalAdapter", "create_adapter"]

#: ``TraCuuHoSo``: look a dossier up; the portal answers its public fields.
SERVICE_LOOK_UP = "TraCuuHoSo"
LOOK_UP_FIELDS = ("MaHoSo", "MaTTHC", "TenTTHC", "ChuHoSo", "NgayTiepNhan", "NgayHenTra", "NgayTra", "TrangThaiHoSo")


class NationalPortalAdapter:
    """Delivers ``dossier.upserted`` (DongBoHoSoMC) and ``dossier.progress`` (CapNhatTienDoHoSoMC).

    A create the portal answers with "đã tồn tại" (the dossier already exists) is resent
    at once as an update; that counts as delivered.
    """

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
                f"The national portal rejected {subject}: {_portal_message(reply.message, ())} "
                "Fix the dossier.",
                status_code=200,
            )


def _public_fields(dossier: Mapping[str, Any]) -> dict[str, Any]:
    return {key: dossier.get(key) for key in LOOK_UP_FIELDS}


def _portal_message(message: str | None, personal: Sequence[str]) -> str:
    text = redact(message.strip(), personal) if message and message.strip() else "(the portal gave no message)"
    return text if text.endswith((".", "!", "?")) else f"{text}."


def create_adapter(target_id: str, config: Mapping[str, Any]) -> NationalPortalAdapter:
    """Build the adapter of target ``target_id`` from its settings.

    Keys: ``base_url`` (required), ``client_id`` and ``client_secret`` (required, OAuth2 client
    credentials), ``timeout_seconds`` (10), ``max_connections`` (50), ``token_url``
    (default ``<base_url>/oauth2/token``). Other keys are ignored.
    """
    where = f"target {target_id!r} (national_portal)"
    base_url = _url(config, "base_url", where, required=True)
    token_url = _url(config, "token_url", where, required=False)
    credentials = {}
    for key in ("client_id", "client_secret"):
        value = config.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(
                f"Settings of {where} lack {key}: set the OAuth2 client credentials the NGSP/LGSP gateway "
                "issued for the hub."
            )
        credentials[key] = value.strip()
    timeout = _number(config, "timeout_seconds", 10.0, where)
    max_connections = int(_number(config, "max_connections", 50, where))
    client = NationalPortalClient(
        base_url=base_url or "",
        token_url=token_url,
        client_id=credentials["client_id"],
        client_secret=credentials["client_secret"],
        timeout_seconds=timeout,
        max_connections=max_connections,
    )
    return NationalPortalAdapter(target_id, client)


def _url(config: Mapping[str, Any], key: str, where: str, *, required: bool) -> str | None:
    value = config.get(key)
    if value is None or value == "":
        if required:
            raise ConfigurationError(f"Settings of {where} lack {key}, e.g. https://api.ngsp.gov.vn.")
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigurationError(f"{key} of {where} must be an http:// or https:// URL, got {value!r}.")
    return value.rstrip("/")


def _number(config: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = config.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise ConfigurationError(f"{key} of {where} must be a positive number, got {value!r}.")
    return number
