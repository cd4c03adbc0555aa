"""The fields the portal checks in DongBoHoSoMC and CapNhatTienDoHoSoMC items, from ``shared/domain.md``.

The mock's own models, apart from the hub's canonical schemas on purpose: a field the hub gets
wrong is refused here (``error_code`` -1) instead of being accepted by the same mistake. Unknown
fields are kept (the portal ignores what it does not know); text is stripped.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = ["ProgressStep", "SyncedDossier"]

#: MaHoSo ``<agency code>-<YYMMDD>-<NNNN>``, a daily counter per receiving agency (Decree 61/2018 art. 26).
_DOSSIER_CODE = re.compile(r"^[A-Z0-9][A-Za-z0-9.]{0,39}-\d{6}-\d{4,6}$")
_PHONE = re.compile(r"\+?\d{9,12}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: (offset, width) of year, month, day, hour, minute, second in ``yyyyMMddHHmmss``.
_TIME_PARTS = ((0, 4), (4, 2), (6, 2), (8, 2), (10, 2), (12, 2))


def _dossier_code(value: str) -> str:
    if not _DOSSIER_CODE.match(value):
        raise ValueError(f"must be <agency code>-<YYMMDD>-<NNNN>, for example H15.50.05.13-261008-0975, got {value!r}")
    return value


def _portal_time(value: str) -> str:
    """Dates are ``yyyyMMddHHmmss`` (Asia/Ho_Chi_Minh) and must be real."""
    if len(value) != 14 or not value.isdigit():
        raise ValueError(f"must be a date and time written yyyyMMddHHmmss (14 digits), got {value!r}")
    try:
        year, month, day, hour, minute, second = (int(value[start : start + width]) for start, width in _TIME_PARTS)
        datetime(year, month, day, hour, minute, second)  # only checks the date is real
    except ValueError:
        raise ValueError(f"is not a real date and time: {value!r}") from None
    return value


def _phone(value: str | None) -> str | None:
    if value is not None and not _PHONE.fullmatch(value):
        raise ValueError("must be a phone number of 9 to 12 digits, optionally starting with +")
    return value


def _email(value: str | None) -> str | None:
    if value and not _EMAIL.fullmatch(value):
        raise ValueError("must be an e-mail address such as name@example.vn")
    return value or None


DossierCode = Annotated[str, AfterValidator(_dossier_code)]
PortalTime = Annotated[str, AfterValidator(_portal_time)]
#: TrangThaiHoSo: 1 new … 10 result returned.
Status = Literal[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
_RESULT_RETURNED = 10


class _Item(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


class AttachedFile(_Item):
    TepDinhKemId: str | None = None
    TenTepDinhKem: str = Field(min_length=1)
    DuongDanTaiTepTin: str | None = None


class Fee(_Item):
    TenPhiLePhi: str = Field(min_length=1)
    MaPhiLePhi: str | None = None
    HinhThucThu: int | None = None
    Gia: int = Field(ge=0)


class Identifier(_Item):
    """DinhDanhCHS: LoaiDinhDanh 1 is the 12-digit personal ID, 2 the 9-digit old ID card."""

    LoaiDinhDanh: Literal[1, 2]
    SoDinhDanh: str

    @model_validator(mode="after")
    def _length_of_kind(self) -> Identifier:
        digits = 12 if self.LoaiDinhDanh == 1 else 9
        if not (self.SoDinhDanh.isdigit() and len(self.SoDinhDanh) == digits):
            raise ValueError(f"SoDinhDanh must be {digits} digits when LoaiDinhDanh is {self.LoaiDinhDanh}")
        return self


class SyncedDossier(_Item):
    """One item of DongBoHoSoMC's ``data``."""

    MaHoSo: DossierCode
    MaTTHC: str = Field(min_length=1, max_length=100)
    TenTTHC: str = Field(min_length=1, max_length=1000)
    MaLinhVuc: str | None = None
    TenLinhVuc: str | None = None
    KenhThucHien: Literal[1, 2, 3]
    ChuHoSo: str = Field(min_length=1, max_length=500)
    LoaiDoiTuong: Literal[1, 2, 3, 4]
    MaDoiTuong: str | None = None
    SoGiayToChuHoSo: str | None = None
    Email: Annotated[str | None, AfterValidator(_email)] = None
    SoDienThoai: Annotated[str | None, AfterValidator(_phone)] = None
    TrichYeuHoSo: str | None = None
    NgayTiepNhan: PortalTime
    NgayHenTra: PortalTime | None = None
    TrangThaiHoSo: Status
    NgayTra: PortalTime | None = None
    HinhThuc: Literal[0, 1] | None = None
    DonViXuLy: str | None = None
    TaiLieuNop: list[AttachedFile] = Field(default_factory=list)
    DanhSachLePhi: list[Fee] = Field(default_factory=list)
    DinhDanhCHS: list[Identifier] = Field(default_factory=list)
    TaiKhoanDuocXacThucVoiVNeID: Literal[0, 1] | None = None
    DuocThanhToanTrucTuyen: Literal[0, 1] | None = None

    @model_validator(mode="after")
    def _dates_agree(self) -> SyncedDossier:
        if self.NgayHenTra and self.NgayHenTra < self.NgayTiepNhan:
            raise ValueError("NgayHenTra (due date) must not be before NgayTiepNhan (received)")
        if self.TrangThaiHoSo == _RESULT_RETURNED and not self.NgayTra:
            raise ValueError("NgayTra (result date) is required when TrangThaiHoSo is 10 (result returned)")
        return self


class ProgressStep(_Item):
    """One item of CapNhatTienDoHoSoMC's ``data``."""

    MaHoSo: DossierCode
    NguoiXuLy: str = Field(min_length=1, max_length=50)
    ChucDanh: str | None = None
    ThoiDiemXuLy: PortalTime
    PhongBanXuLy: str | None = None
    NoiDungXuLy: str = Field(min_length=1, max_length=2000)
    TrangThai: Status
    NgayBatDau: PortalTime | None = None
    NgayKetThucTheoQuyDinh: PortalTime | None = None
