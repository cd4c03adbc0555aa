"""Messages of the payment platform (national portal's platform or a bank gateway), with its field names.

Every message is a JSON object with ``LoaiBanTin`` (INIT, QUERY, GET_BILL, REFUND; RESULT for the
payment result the platform sends back) and ``MaXacThuc`` (see :mod:`adapters.payment.signing`).
Answers carry ``MaLoi`` ("00" = done) and ``MoTaLoi``. Amounts are integers in VND.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ANSWER_ALREADY_CONFIRMED",
    "ANSWER_AMOUNT_MISMATCH",
    "ANSWER_BAD_SIGNATURE",
    "ANSWER_CURRENCY_MISMATCH",
    "ANSWER_ERROR",
    "ANSWER_OK",
    "ANSWER_UNKNOWN_REFERENCE",
    "PROTOCOL_VERSION",
    "RESULT_CANCELLED",
    "RESULT_EXPIRED",
    "RESULT_FAILED",
    "RESULT_NOT_FOUND",
    "RESULT_PAID",
    "RESULT_PENDING",
    "BillReply",
    "CallbackAnswer",
    "InitReply",
    "PaymentResult",
    "PlatformReply",
    "RefundReply",
    "platform_time",
]

PROTOCOL_VERSION = "1.0.6"
_VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")

# MaLoi of a payment result (callback or QUERY answer)
RESULT_PAID = "00"
RESULT_PENDING = "01"  # QUERY only: the citizen has not finished paying
RESULT_CANCELLED = "02"  # the citizen cancelled on the payment page
RESULT_FAILED = "03"  # the bank declined
RESULT_EXPIRED = "04"  # the payment page expired
RESULT_NOT_FOUND = "10"  # QUERY only: the platform has no payment with this MaThamChieu

# MaLoi of request answers: "00" done; "96" MaThamChieu reused with other content; "97" bad MaXacThuc;
# "98" invalid request; "99" the platform failed (try again later).
REQUEST_OK = "00"

# MaLoi the hub answers a result callback with (the platform stops resending on 00 and 02)
ANSWER_OK = "00"
ANSWER_UNKNOWN_REFERENCE = "01"
ANSWER_ALREADY_CONFIRMED = "02"
ANSWER_AMOUNT_MISMATCH = "04"
ANSWER_CURRENCY_MISMATCH = "05"
ANSWER_BAD_SIGNATURE = "97"
ANSWER_ERROR = "99"


def platform_time(moment: datetime | None = None) -> str:
    """``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh (ThoiGianGD)."""
    return (moment or datetime.now(_VIETNAM)).astimezone(_VIETNAM).strftime("%Y%m%d%H%M%S")


class PlatformReply(BaseModel):
    """Any answer of the platform: ``MaLoi`` "00" when it did what was asked."""

    model_config = ConfigDict(extra="allow", frozen=True)

    MaLoi: str
    MoTaLoi: str | None = None
    MaXacThuc: str | None = None

    @property
    def ok(self) -> bool:
        return self.MaLoi == REQUEST_OK


class InitReply(PlatformReply):
    LoaiBanTin: str = "INIT"
    MaDoiTac: str | None = None
    MaThamChieu: str | None = None
    UrlThanhToan: str | None = None


def _integer_amount(value: Any) -> Any:
    """Amounts arrive as JSON integers or digit strings; a float (even 150000.0) is refused."""
    if isinstance(value, bool | float):
        raise ValueError("SoTien must be an integer number of VND")  # noqa: TRY004 - pydantic wants ValueError
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise ValueError(f"SoTien must be an integer number of VND, got {value!r}")
        return int(value.strip())
    return value


class PaymentResult(BaseModel):
    """The result of a payment: the callback the platform posts to the hub, and the answer to QUERY.

    ``raw`` keeps the values exactly as received: the signature is checked over them.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    LoaiBanTin: str
    MaLoi: str = Field(min_length=1, max_length=8)
    MoTaLoi: str | None = None
    MaDoiTac: str = Field(min_length=1, max_length=64)
    MaThamChieu: str = Field(min_length=1, max_length=64)
    SoTien: int = Field(ge=0)
    MaTienTe: str = Field(min_length=1, max_length=8)
    MaGiaoDich: str | None = Field(default=None, max_length=64)
    MaNganHang: str | None = Field(default=None, max_length=32)
    ThoiGianGD: str | None = Field(default=None, max_length=14)
    ThongTinGiaoDich: str | None = None
    MaXacThuc: str = Field(min_length=1, max_length=128)

    @field_validator("SoTien", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return _integer_amount(value)

    @property
    def paid(self) -> bool:
        return self.MaLoi == RESULT_PAID


class BillReply(PlatformReply):
    """The receipt (biên lai điện tử) of a paid payment."""

    LoaiBanTin: str = "GET_BILL"
    MaDoiTac: str | None = None
    MaThamChieu: str | None = None
    MaGiaoDich: str | None = None
    SoBienLai: str | None = None
    KyHieuBienLai: str | None = None
    NgayBienLai: str | None = None
    UrlBienLai: str | None = None
    SoTien: int | None = None

    @field_validator("SoTien", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return None if value is None else _integer_amount(value)


class RefundReply(PlatformReply):
    LoaiBanTin: str = "REFUND"
    MaDoiTac: str | None = None
    MaThamChieu: str | None = None
    MaHoanTien: str | None = None
    MaGiaoDichHoanTien: str | None = None
    SoTien: int | None = None

    @field_validator("SoTien", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return None if value is None else _integer_amount(value)


class CallbackAnswer(BaseModel):
    """What the hub answers a result callback with (HTTP 200): ``MaLoi`` "00" = taken."""

    MaLoi: str
    MoTaLoi: str
