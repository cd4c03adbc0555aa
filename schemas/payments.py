"""Canonical messages of online fee payment (national payment platform or a bank gateway).

``payment.init`` and ``payment.refund`` are requests the one-stop system sends
(``POST /v1/requests/<type>``); ``payment.completed`` and ``payment.receipt`` are messages the hub
originates when the platform confirms a payment and when it has fetched the receipt, delivered to
the one-stop system. Money is an integer number of VND, never a float: ``150000.0`` is refused.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, StrictInt, field_validator, model_validator

from schemas._text import PlainText
from schemas.dossier import PortalTimestamp, check_dossier_code

__all__ = ["FeeLine", "PaymentCompleted", "PaymentInit", "PaymentReceipt", "PaymentRefund"]

#: Largest amount one payment may carry (10 billion VND): a guard against a misplaced digit.
MAX_AMOUNT_VND = 10_000_000_000
_Amount = Field(gt=0, le=MAX_AMOUNT_VND, description="Amount in VND, an integer.")


class _Strict(PlainText):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class FeeLine(_Strict):
    """One fee or charge of the procedure (DanhSachLePhi), as on the dossier."""

    TenPhiLePhi: str = Field(min_length=1, max_length=500)
    MaPhiLePhi: str | None = Field(default=None, max_length=100)
    HinhThucThu: int | None = None
    Gia: StrictInt = Field(ge=0, le=MAX_AMOUNT_VND, description="Amount in VND, an integer.")


def _check_return_url(value: str | None) -> str | None:
    if value is not None and (not value.startswith(("https://", "http://")) or value.count("/") < 3):
        raise ValueError("must be an absolute http(s) URL with a path, like https://motcua.example.vn/thanh-toan/xong")
    return value


class PaymentInit(_Strict):
    """``payment.init``: ask the payment platform for a payment page for a dossier's fees."""

    MaHoSo: str = Field(description="Dossier code <agency code>-<YYMMDD>-<NNNN>.")
    DanhSachLePhi: list[FeeLine] = Field(min_length=1, max_length=50)
    SoTien: StrictInt = _Amount
    MaTienTe: Literal["VND"] = "VND"
    ThongTinGiaoDich: str | None = Field(default=None, max_length=210, description="Shown on the payment page.")
    UrlTraVe: str | None = Field(default=None, max_length=1000, description="Where the citizen's browser returns.")

    @field_validator("MaHoSo")
    @classmethod
    def _dossier_code(cls, value: str) -> str:
        return check_dossier_code(value)

    @field_validator("UrlTraVe")
    @classmethod
    def _return_url(cls, value: str | None) -> str | None:
        return _check_return_url(value)

    @model_validator(mode="after")
    def _total_matches_fees(self) -> PaymentInit:
        total = sum(line.Gia for line in self.DanhSachLePhi)
        if total != self.SoTien:
            raise ValueError(f"SoTien {self.SoTien} VND is not the sum of DanhSachLePhi ({total} VND)")
        return self


class PaymentRefund(_Strict):
    """``payment.refund``: give back a paid fee because the service was not performed."""

    MaHoSo: str
    MaThamChieu: str | None = Field(
        default=None, max_length=64, description="The payment to refund; the dossier's paid payment when left out."
    )
    SoTien: StrictInt | None = Field(
        default=None, gt=0, le=MAX_AMOUNT_VND, description="Amount to refund in VND; the whole payment when left out."
    )
    LyDo: str = Field(min_length=1, max_length=500, description="Why the service was not performed.")

    @field_validator("MaHoSo")
    @classmethod
    def _dossier_code(cls, value: str) -> str:
        return check_dossier_code(value)


class PaymentCompleted(_Strict):
    """``payment.completed``: the platform confirmed (verified callback or reconciliation) that a fee was paid."""

    MaHoSo: str
    MaThamChieu: str
    MaGiaoDich: str = Field(description="The platform's transaction id.")
    MaNganHang: str | None = None
    SoTien: StrictInt = _Amount
    MaTienTe: Literal["VND"] = "VND"
    ThoiGianGD: PortalTimestamp
    ThongTinGiaoDich: str | None = None
    DanhSachLePhi: list[FeeLine] = Field(default_factory=list)
    KenhXacNhan: Literal["callback", "reconciliation"] = Field(
        description="callback: the platform's result callback; reconciliation: the hub's QUERY after no callback came."
    )

    @field_validator("MaHoSo")
    @classmethod
    def _dossier_code(cls, value: str) -> str:
        return check_dossier_code(value)


class PaymentReceipt(_Strict):
    """``payment.receipt``: the electronic receipt (biên lai) of a payment, fetched with GET_BILL."""

    MaHoSo: str
    MaThamChieu: str
    MaGiaoDich: str
    SoTien: StrictInt = _Amount
    SoBienLai: str = Field(min_length=1, description="Receipt number.")
    KyHieuBienLai: str | None = None
    NgayBienLai: PortalTimestamp | None = None
    UrlBienLai: str | None = Field(default=None, description="Where the receipt can be downloaded.")

    @field_validator("MaHoSo")
    @classmethod
    def _dossier_code(cls, value: str) -> str:
        return check_dossier_code(value)
