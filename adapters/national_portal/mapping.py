"""Canonical envelope payloads → national portal request bodies, and reply interpretation.

The hub's ``dossier.upserted`` / ``dossier.progress`` payloads already use the portal's
field names (:mod:`schemas.dossier`); mapping validates them again, normalises text to NFC
(the portal compares names byte for byte) and builds the request bodies.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from adapters.national_portal.wire import DossierSyncRequest, ProgressUpdateRequest
from hub.plugin import Envelope, PermanentDeliveryError, normalize_text
from schemas.dossier import DossierProgress, DossierUpserted

__all__ = [
    "TYPE_DOSSIER_PROGRESS",
    "TYPE_DOSSIER_UPSERTED",
    "describe_dossiers",
    "dossier_from_envelope",
    "is_already_registered",
    "personal_values",
    "progress_request",
    "step_from_envelope",
    "sync_request",
]

TYPE_DOSSIER_UPSERTED = "dossier.upserted"
TYPE_DOSSIER_PROGRESS = "dossier.progress"

#: Fields of a dossier whose values are personal data and never appear in a reason or log.
_PERSONAL_FIELDS = ("ChuHoSo", "SoGiayToChuHoSo", "MaDoiTuong", "SoDienThoai", "Email")
#: 9- to 12-digit runs are ID card, personal ID or phone numbers (14-digit timestamps are kept).
_ALREADY_REGISTERED = ("đã tồn tại", "da ton tai")

_ModelT = TypeVar("_ModelT", bound=BaseModel)


def _validate(model: type[_ModelT], envelope: Envelope) -> _ModelT:
    try:
        parsed = model.model_validate(normalize_text(envelope.payload))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'payload'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        code = envelope.dossier_code or _payload_code(envelope.payload)
        raise PermanentDeliveryError(
            f"Message {envelope.id} ({envelope.type}) for dossier {code} cannot be sent to the national "
            f"portal because its payload is invalid: {problems}. Correct the dossier in {envelope.source} "
            "so that it sends a new version."
        ) from None
    payload_code: object = getattr(parsed, "MaHoSo", None)
    if envelope.dossier_code is not None and payload_code != envelope.dossier_code:
        raise PermanentDeliveryError(
            f"Message {envelope.id} ({envelope.type}) is filed under dossier {envelope.dossier_code} but its "
            f"payload is about dossier {payload_code}. This is a bug in the route or mapping that produced "
            "it; report it to the hub maintainers."
        )
    return parsed


def _payload_code(payload: Mapping[str, Any]) -> str:
    code = payload.get("MaHoSo")
    return code if isinstance(code, str) and code else "(no MaHoSo)"


def dossier_from_envelope(envelope: Envelope) -> DossierUpserted:
    """The dossier of a ``dossier.upserted`` message; PermanentDeliveryError when it is invalid."""
    return _validate(DossierUpserted, envelope)


def step_from_envelope(envelope: Envelope) -> DossierProgress:
    """The step of a ``dossier.progress`` message; PermanentDeliveryError when it is invalid."""
    return _validate(DossierProgress, envelope)


def sync_request(dossier: DossierUpserted, *, updating: bool) -> DossierSyncRequest:
    return DossierSyncRequest(isUpdating=updating, data=[dossier])


def progress_request(steps: Sequence[DossierProgress]) -> ProgressUpdateRequest:
    return ProgressUpdateRequest(data=list(steps))


def is_already_registered(message: str | None) -> bool:
    """True when a create was refused because the portal already has the dossier ("đã tồn tại")."""
    if not message:
        return False
    text = unicodedata.normalize("NFC", message).casefold()
    return any(marker in text for marker in _ALREADY_REGISTERED)


def describe_dossiers(codes: Iterable[str]) -> str:
    """``dossier X`` or ``dossiers X, Y`` (each code once, in order)."""
    unique = list(dict.fromkeys(codes))
    if len(unique) == 1:
        return f"dossier {unique[0]}"
    return "dossiers " + ", ".join(unique)


def personal_values(payloads: Iterable[Mapping[str, Any]]) -> list[str]:
    """The personal data (names, ID numbers, phones, e-mails) found in dossier payloads."""
    values: list[str] = []
    for payload in payloads:
        for field in _PERSONAL_FIELDS:
            value = payload.get(field)
            if isinstance(value, str) and value.strip():
                values.append(value.strip())
        identifiers = payload.get("DinhDanhCHS")
        if isinstance(identifiers, list):
            for identifier in identifiers:
                if isinstance(identifier, Mapping) and isinstance(identifier.get("SoDinhDanh"), str):
                    values.append(identifier["SoDinhDanh"])
    return values
