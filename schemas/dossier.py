"""Canonical dossier messages, with the national portal's wire field names.

``dossier.upserted`` is a dossier's full current state (DongBoHoSoMC);
``dossier.progress`` is one processing step (CapNhatTienDoHoSoMC).
Field names stay Vietnamese as the real systems use them (see ``shared/domain.md``).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import IntEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from schemas._text import PlainText

__all__ = [
    "DOSSIER_CODE_PATTERN",
    "DossierProgress",
    "DossierStatus",
    "DossierUpserted",
    "PortalTimestamp",
    "check_dossier_code",
    "parse_portal_timestamp",
]

#: ``<agency code>-<YYMMDD>-<NNNN>``, e.g. ``H15.50.05.13-261008-0975`` (Decree 61/2018 art. 26).
DOSSIER_CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Za-z0-9.]{0,39}-\d{6}-\d{4,6}$")
_TIMESTAMP_PATTERN = re.compile(r"^\d{14}$")


class DossierStatus(IntEnum):
    """TrangThaiHoSo of the national portal."""

    NEW = 1
    ACCEPTED = 2
    REFUSED = 3
    PROCESSING = 4
    MORE_DOCUMENTS_REQUESTED = 5
    AWAITING_FEE_PAYMENT = 6
    WITHDRAWN = 7
    SUSPENDED = 8
    FINISHED = 9
    RESULT_RETURNED = 10

    @property
    def label_vi(self) -> str:
        return _STATUS_LABELS_VI[self]


_STATUS_LABELS_VI = {
    DossierStatus.NEW: "Mới",
    DossierStatus.ACCEPTED: "Đã tiếp nhận",
    DossierStatus.REFUSED: "Từ chối",
    DossierStatus.PROCESSING: "Đang xử lý",
    DossierStatus.MORE_DOCUMENTS_REQUESTED: "Yêu cầu bổ sung",
    DossierStatus.AWAITING_FEE_PAYMENT: "Chờ thực hiện nghĩa vụ tài chính",
    DossierStatus.WITHDRAWN: "Công dân yêu cầu rút hồ sơ",
    DossierStatus.SUSPENDED: "Dừng xử lý",
    DossierStatus.FINISHED: "Đã xử lý xong",
    DossierStatus.RESULT_RETURNED: "Đã trả kết quả",
}


def parse_portal_timestamp(value: str) -> datetime:
    """Parse ``yyyyMMddHHmmss`` (Asia/Ho_Chi_Minh wall time); raise ValueError with a sentence."""
    if not _TIMESTAMP_PATTERN.match(value):
        raise ValueError(f"must be a date and time written yyyyMMddHHmmss (14 digits), got {value!r}")
    try:  # the pattern checked the 14 digits; datetime() checks the date (strptime is 10x slower)
        return datetime(
            int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[8:10]), int(value[10:12]), int(value[12:14])
        )
    except ValueError:
        raise ValueError(f"is not a real date and time: {value!r}") from None


def check_dossier_code(value: str) -> str:
    """Return ``value`` when it is a dossier code; raise ValueError with a sentence otherwise."""
    if not DOSSIER_CODE_PATTERN.match(value):
        raise ValueError(f"must be <agency code>-<YYMMDD>-<NNNN>, for example H15.50.05.13-261008-0975, got {value!r}")
    return value


def _check_timestamp(value: str) -> str:
    parse_portal_timestamp(value)
    return value


PortalTimestamp = Annotated[str, Field(examples=["20261126083000"], json_schema_extra={"pattern": r"^\d{14}$"})]


class _WireModel(PlainText):
    """A field the schema does not have is refused (422 naming it), never stored nor sent on."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class AttachedFile(_WireModel):
    TepDinhKemId: str | None = None
    TenTepDinhKem: str = Field(min_length=1)
    DuongDanTaiTepTin: str | None = None


class FeeItem(_WireModel):
    TenPhiLePhi: str = Field(min_length=1)
    MaPhiLePhi: str | None = None
    HinhThucThu: int | None = None
    Gia: int = Field(ge=0, description="Amount in VND, an integer.")


class PersonalIdentifier(_WireModel):
    LoaiDinhDanh: Literal[1, 2] = Field(description="1 = 12-digit personal ID, 2 = 9-digit old ID card.")
    SoDinhDanh: str

    @model_validator(mode="after")
    def _digits_match_kind(self) -> PersonalIdentifier:
        expected = 12 if self.LoaiDinhDanh == 1 else 9
        if not (self.SoDinhDanh.isdigit() and len(self.SoDinhDanh) == expected):
            raise ValueError(f"SoDinhDanh must be {expected} digits when LoaiDinhDanh is {self.LoaiDinhDanh}")
        return self


class DossierUpserted(_WireModel):
    """A dossier's full current state, as sent to DongBoHoSoMC."""

    MaHoSo: str = Field(description="Dossier code <agency code>-<YYMMDD>-<NNNN>.")
    MaTTHC: str = Field(min_length=1, max_length=100, description="Procedure code from the national catalogue.")
    TenTTHC: str = Field(min_length=1, max_length=1000)
    MaLinhVuc: str | None = None
    TenLinhVuc: str | None = None
    KenhThucHien: Literal[1, 2, 3] = Field(description="1 in person, 2 online, 3 by post.")
    ChuHoSo: str = Field(min_length=1, max_length=500, description="Applicant's name (personal data).")
    LoaiDoiTuong: Literal[1, 2, 3, 4] = Field(description="1 citizen, 2 business, 3 agency, 4 other.")
    MaDoiTuong: str | None = None
    SoGiayToChuHoSo: str | None = None
    Email: str | None = None
    SoDienThoai: str | None = None
    TrichYeuHoSo: str | None = None
    NgayTiepNhan: PortalTimestamp
    NgayHenTra: PortalTimestamp | None = None
    TrangThaiHoSo: DossierStatus
    NgayTra: PortalTimestamp | None = None
    HinhThuc: Literal[0, 1] | None = Field(default=None, description="0 at the desk, 1 by post.")
    DonViXuLy: str | None = None
    TaiLieuNop: list[AttachedFile] = Field(default_factory=list)
    DanhSachLePhi: list[FeeItem] = Field(default_factory=list)
    DinhDanhCHS: list[PersonalIdentifier] = Field(default_factory=list)
    TaiKhoanDuocXacThucVoiVNeID: Literal[0, 1] | None = None
    DuocThanhToanTrucTuyen: Literal[0, 1] | None = None

    @field_validator("MaHoSo")
    @classmethod
    def _dossier_code(cls, value: str) -> str:
        return check_dossier_code(value)

    @field_validator("NgayTiepNhan", "NgayHenTra", "NgayTra")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        return None if value is None else _check_timestamp(value)

    @field_validator("SoDienThoai")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\+?\d{9,12}", value):
            raise ValueError("must be a phone number of 9 to 12 digits, optionally starting with +")
        return value

    @field_validator("Email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError("must be an e-mail address such as name@example.vn")
        return value or None

    @model_validator(mode="after")
    def _dates_in_order(self) -> DossierUpserted:
        if self.NgayHenTra and self.NgayHenTra < self.NgayTiepNhan:
            raise ValueError("NgayHenTra (due date) must not be before NgayTiepNhan (received)")
        if self.TrangThaiHoSo == DossierStatus.RESULT_RETURNED and not self.NgayTra:
            raise ValueError("NgayTra (result date) is required when TrangThaiHoSo is 10 (result returned)")
        return self


class DossierProgress(_WireModel):
    """One processing step, as sent to CapNhatTienDoHoSoMC."""

    MaHoSo: str
    NguoiXuLy: str = Field(min_length=1, max_length=50, description="Official who handled the step.")
    ChucDanh: str | None = None
    ThoiDiemXuLy: PortalTimestamp
    PhongBanXuLy: str | None = None
    NoiDungXuLy: str = Field(min_length=1, max_length=2000)
    TrangThai: DossierStatus
    NgayBatDau: PortalTimestamp | None = None
    NgayKetThucTheoQuyDinh: PortalTimestamp | None = None

    @field_validator("MaHoSo")
    @classmethod
    def _dossier_code(cls, value: str) -> str:
        return check_dossier_code(value)

    @field_validator("ThoiDiemXuLy", "NgayBatDau", "NgayKetThucTheoQuyDinh")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        return None if value is None else _check_timestamp(value)
