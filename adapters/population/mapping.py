"""Canonical requests → SOAP fields, and SOAP answers → the canonical citizen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.population.regions import address_from_wire
from hub.plugin import Envelope, UnusableReplyError, normalize_text
from schemas.population import (
    Citizen,
    CitizenName,
    PopulationLookupResult,
    PopulationVerifyResult,
    check_birth_date,
    check_id_number,
)

__all__ = [
    "OPERATIONS",
    "TYPE_LOOKUP",
    "TYPE_VERIFY",
    "citizen_from_wire",
    "lookup_result",
    "request_fields",
    "verify_result",
]

TYPE_LOOKUP = "population.lookup"
TYPE_VERIFY = "population.verify"
#: canonical request type → SOAP operation
OPERATIONS: Mapping[str, str] = {TYPE_LOOKUP: "XacMinhThongTinNhanThan", TYPE_VERIFY: "XacThucThongTinCongDan"}
_REQUEST_FIELDS = ("MaDVC", "MaDonVi", "MaCanBo", "SoDinhDanh", "SoCMND", "HoVaTen", "NgayThangNamSinh")


def request_fields(envelope: Envelope, *, integration_code: str) -> dict[str, str]:
    """The SOAP request's fields: the caller's payload, the hub's MaTichHop, MaYeuCau = request id."""
    payload = envelope.payload
    fields = {key: str(payload[key]) for key in _REQUEST_FIELDS if payload.get(key) is not None}
    fields["MaYeuCau"] = str(payload.get("MaYeuCau") or envelope.id)
    fields["MaTichHop"] = integration_code
    return fields


def _unusable(operation: str, problem: str) -> UnusableReplyError:
    return UnusableReplyError(
        f"The population database answered {operation} with a reply the hub cannot use: {problem}. "
        "Report it to the population database's operators with the request id."
    )


def citizen_from_wire(raw: Mapping[str, Any], *, operation: str = "XacMinhThongTinNhanThan") -> Citizen:
    """Map one ``CongDan`` (already a plain dict) to the canonical citizen, NFC everywhere."""
    data = normalize_text(dict(raw))
    name = data.get("HoVaTen") or {}
    if not isinstance(name, dict) or not name.get("Ten"):
        raise _unusable(operation, "a CongDan without HoVaTen/Ten")
    try:
        number = check_id_number(str(data.get("SoDinhDanh") or ""))
        birth = check_birth_date(str(data.get("NgayThangNamSinh") or ""))
    except ValueError as exc:
        raise _unusable(operation, f"a CongDan whose {exc}") from exc
    return Citizen(
        SoDinhDanh=number,
        SoCMND=data.get("SoCMND") or None,
        HoVaTen=CitizenName.from_parts(str(name.get("Ho") or ""), name.get("ChuDem"), str(name["Ten"])),
        NgayThangNamSinh=birth,
        GioiTinh=data.get("GioiTinh") or None,
        DanToc=data.get("DanToc") or None,
        TonGiao=data.get("TonGiao") or None,
        QuocTich=data.get("QuocTich") or None,
        NoiDangKyKhaiSinh=address_from_wire(data.get("NoiDangKyKhaiSinh")),
        QueQuan=address_from_wire(data.get("QueQuan")),
        ThuongTru=address_from_wire(data.get("ThuongTru")),
        NoiOHienTai=address_from_wire(data.get("NoiOHienTai")),
    )


def lookup_result(reply: Mapping[str, Any], request_id: str) -> dict[str, Any]:
    """XacMinhThongTinNhanThanResponse → ``PopulationLookupResult`` (JSON)."""
    collection = reply.get("CongdanCollection") or {}
    citizens = collection.get("CongDan") if isinstance(collection, dict) else None
    citizens = citizens or []
    if not isinstance(citizens, list):
        raise _unusable("XacMinhThongTinNhanThan", "CongdanCollection is not a list of CongDan")
    if len(citizens) > 1:
        raise _unusable("XacMinhThongTinNhanThan", f"{len(citizens)} citizens for one ID number")
    citizen = citizen_from_wire(citizens[0]) if citizens else None
    result = PopulationLookupResult(
        MaYeuCau=str(reply.get("MaYeuCau") or request_id), found=citizen is not None, CongDan=citizen
    )
    return result.model_dump(mode="json")


def verify_result(reply: Mapping[str, Any], request_id: str) -> dict[str, Any]:
    """XacThucThongTinCongDanResponse → ``PopulationVerifyResult`` (JSON)."""
    exists = reply.get("TonTai")
    if not isinstance(exists, bool):
        raise _unusable("XacThucThongTinCongDan", "TonTai is missing or not true/false")
    result = PopulationVerifyResult(MaYeuCau=str(reply.get("MaYeuCau") or request_id), found=exists, TonTai=exists)
    return result.model_dump(mode="json")
