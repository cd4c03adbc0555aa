"""Requests to the national population database and the canonical citizen it answers with.

Field names are the population database's own (``shared/domain.md``): the one-stop systems
already use them. ``population.lookup`` (XacMinhThongTinNhanThan) returns the citizen's
record; ``population.verify`` (XacThucThongTinCongDan) says whether a citizen with this ID
number, name and date of birth exists (``TonTai``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas._text import PlainText
from schemas.audit import AuditFacts

__all__ = [
    "Address",
    "Citizen",
    "CitizenName",
    "PopulationLookup",
    "PopulationLookupResult",
    "PopulationVerify",
    "PopulationVerifyResult",
    "check_birth_date",
    "check_id_number",
]

_ID_NUMBER = re.compile(r"^\d{12}$")
_OLD_ID_NUMBER = re.compile(r"^\d{9}$")
_BIRTH_DATE = re.compile(r"^\d{8}$")


def check_id_number(value: str) -> str:
    """SoDinhDanh: the 12-digit personal ID number (định danh cá nhân / CCCD)."""
    if not _ID_NUMBER.match(value):
        raise ValueError(
            f"must be the 12-digit personal ID number (SoDinhDanh), got {len(value)} character(s)"
            + ("" if value.isdigit() else " that are not all digits")
        )
    return value


def check_old_id_number(value: str) -> str:
    if not _OLD_ID_NUMBER.match(value):
        raise ValueError("must be the 9-digit old identity card number (SoCMND)")
    return value


def check_birth_date(value: str) -> str:
    """NgayThangNamSinh: ``yyyyMMdd``, a real date, not in the future."""
    if not _BIRTH_DATE.match(value):
        raise ValueError("must be a date written yyyyMMdd, e.g. 19900215")
    try:
        parsed = datetime.strptime(value, "%Y%m%d").date()
    except ValueError as exc:
        raise ValueError(f"{value} is not a calendar date (yyyyMMdd)") from exc
    if parsed > date.today() or parsed.year < 1880:
        raise ValueError(f"{value} is not a plausible date of birth")
    return value


IdNumber = Annotated[str, AfterValidator(check_id_number)]
OldIdNumber = Annotated[str, AfterValidator(check_old_id_number)]
BirthDate = Annotated[str, AfterValidator(check_birth_date)]
_Code = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9._:-]+$")]


class _Request(PlainText):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    MaYeuCau: str | None = Field(
        default=None, max_length=64, description="The caller's request id; the hub's request id is used if absent."
    )
    MaDVC: _Code = Field(description="Public service (dịch vụ công) the lookup is for: the purpose, audited.")
    MaDonVi: _Code = Field(description="Agency of the official.")
    MaCanBo: _Code = Field(description="Official (cán bộ) who asks; audited.")
    SoDinhDanh: IdNumber
    SoCMND: OldIdNumber | None = None

    def audit_facts(self) -> AuditFacts:
        return AuditFacts(official=self.MaCanBo, agency=self.MaDonVi, purpose=self.MaDVC, subject=self.SoDinhDanh)


class PopulationLookup(_Request):
    """``population.lookup`` → XacMinhThongTinNhanThan: the citizen's record, by ID number."""

    HoVaTen: str | None = Field(default=None, min_length=1, max_length=100)
    NgayThangNamSinh: BirthDate | None = None


class PopulationVerify(_Request):
    """``population.verify`` → XacThucThongTinCongDan: does this ID number, name and birth date exist?"""

    HoVaTen: str = Field(min_length=1, max_length=100)
    NgayThangNamSinh: BirthDate


class CitizenName(BaseModel):
    """HoVaTen split as the population database keeps it: family name, middle name(s), given name."""

    Ho: str
    ChuDem: str = ""
    Ten: str
    DayDu: str = Field(description="The full name, Ho ChuDem Ten, NFC.")

    @classmethod
    def from_parts(cls, ho: str, chu_dem: str | None, ten: str) -> CitizenName:
        parts = [" ".join(p.split()) for p in (ho, chu_dem or "", ten)]
        return cls(Ho=parts[0], ChuDem=parts[1], Ten=parts[2], DayDu=" ".join(p for p in parts if p))

    @classmethod
    def from_full_name(cls, full_name: str) -> CitizenName:
        """Split a Vietnamese full name: the first word is the family name, the last the given name.

        ``"Trần Thị Bích Ngọc"`` → Ho ``Trần``, ChuDem ``Thị Bích``, Ten ``Ngọc``; a one-word name is
        a given name only. (Compound family names such as "Tôn Nữ" cannot be told apart from a name
        alone; the population database's own split is used whenever it is available.)
        """
        words = full_name.split()
        if not words:
            raise ValueError("a name needs at least one word")
        if len(words) == 1:
            return cls(Ho="", ChuDem="", Ten=words[0], DayDu=words[0])
        return cls.from_parts(words[0], " ".join(words[1:-1]), words[-1])


class Address(BaseModel):
    """An address with administrative codes, checked against the current list (since 1 July 2025).

    ``MaTinhThanh`` is the current province code (a legacy code is mapped and kept in
    ``MaTinhThanhCu``); ``MaQuanHuyen`` is the legacy district code, kept as received;
    ``CanhBao`` lists codes that are not in the current list.
    """

    MaTinhThanh: str | None = None
    TenTinhThanh: str | None = None
    MaTinhThanhCu: str | None = None
    MaQuanHuyen: str | None = None
    MaPhuongXa: str | None = None
    TenPhuongXa: str | None = None
    ChiTiet: str | None = None
    CanhBao: list[str] = Field(default_factory=list)


class Citizen(BaseModel):
    """The canonical citizen record (CongDan)."""

    SoDinhDanh: str
    SoCMND: str | None = None
    HoVaTen: CitizenName
    NgayThangNamSinh: str
    GioiTinh: str | None = None
    DanToc: str | None = None
    TonGiao: str | None = None
    QuocTich: str | None = None
    NoiDangKyKhaiSinh: Address | None = None
    QueQuan: Address | None = None
    ThuongTru: Address | None = None
    NoiOHienTai: Address | None = None


class PopulationLookupResult(BaseModel):
    MaYeuCau: str
    found: bool
    CongDan: Citizen | None = None


class PopulationVerifyResult(BaseModel):
    MaYeuCau: str
    found: bool
    TonTai: bool
