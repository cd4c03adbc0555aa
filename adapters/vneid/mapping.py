"""VNeID claims → the canonical identity (:class:`schemas.identity.Identity`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from hub.plugin import PermanentDeliveryError, normalize_text
from schemas.identity import AccountType, Identity

__all__ = ["ACCOUNT_TYPES", "identity_from_claims", "level_of_assurance"]

#: LoaiTaiKhoan as VNeID/Keycloak realms write it → the canonical account type.
ACCOUNT_TYPES: Mapping[str, AccountType] = {
    "congdan": "citizen",
    "citizen": "citizen",
    "canhan": "citizen",
    "1": "citizen",
    "tochuc": "organisation",
    "organisation": "organisation",
    "organization": "organisation",
    "2": "organisation",
}
_LAST_DIGIT = re.compile(r"(\d)\s*$")


def level_of_assurance(value: Any) -> int | None:
    """``2``, ``"2"``, ``"loa2"``, ``"urn:vneid:loa:2"`` → 2; None when there is no level in it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= 4 else None
    if isinstance(value, str):
        match = _LAST_DIGIT.search(value)
        if match and 1 <= int(match.group(1)) <= 4:
            return int(match.group(1))
    return None


def identity_from_claims(claims: Mapping[str, Any], *, loa_claim: str = "acr", provider: str = "vneid") -> Identity:
    """Map verified ID-token + userinfo claims; raise PermanentDeliveryError naming what is missing."""
    data = normalize_text(dict(claims))
    problems: list[str] = []
    account = ACCOUNT_TYPES.get(str(data.get("LoaiTaiKhoan", "")).replace(" ", "").lower())
    if account is None:
        problems.append(f"LoaiTaiKhoan {data.get('LoaiTaiKhoan')!r} is not a known account type")
    loa = level_of_assurance(data.get(loa_claim))
    if loa is None:
        problems.append(f"claim {loa_claim!r} carries no level of assurance (got {data.get(loa_claim)!r})")
    if problems:
        raise PermanentDeliveryError(
            f"VNeID's claims cannot be used: {'; '.join(problems)}. Check the client's scopes and mappers "
            "at the provider."
        )
    try:
        return Identity(
            SoDinhDanh=str(data.get("SoDinhDanh") or ""),
            HoVaTen=" ".join(str(data.get("HoVaTen") or "").split()),
            NgayThangNamSinh=data.get("NgayThangNamSinh") or None,
            LoaiTaiKhoan=account or "citizen",
            loa=loa or 1,
            provider=provider,
            sub=str(data.get("sub") or ""),
        )
    except ValidationError as exc:
        fields = ", ".join(f"{'.'.join(str(p) for p in e['loc'])} ({e['msg']})" for e in exc.errors())
        raise PermanentDeliveryError(
            f"VNeID's claims cannot be used: {fields}. Check the client's scopes and mappers at the provider."
        ) from exc
