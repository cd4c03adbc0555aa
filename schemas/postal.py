"""Canonical messages of postal delivery through VNPost.

``postal.order`` and ``postal.cancel`` are requests the one-stop system sends
(``POST /v1/requests/<type>``); ``postal.status_changed`` is what the hub originates for every new
tracking status of a parcel, delivered to the one-stop system in order per ItemCode.

Sender and receiver keep VNPost's field names. Province and ward codes are checked against the
current list (:mod:`schemas.administrative_units`); a pre-merger province code is replaced by the
current one, a legacy district code is kept as given.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Literal

from pydantic import ConfigDict, Field, StrictInt, ValidationInfo, field_validator, model_validator

from schemas._text import PlainText
from schemas.administrative_units import current_province_code, ward_in_province
from schemas.dossier import PortalTimestamp, check_dossier_code

__all__ = [
    "PostalCancel",
    "PostalOrder",
    "PostalParty",
    "PostalStatusChanged",
    "TrackingEvent",
    "TrackingStatus",
]

_PHONE = re.compile(r"\+?\d{9,12}")


class TrackingStatus(IntEnum):
    """VNPost's pickup/tracking status of a parcel."""

    CREATED = 0
    PICKED_UP = 1
    IN_TRANSIT = 2
    OUT_FOR_DELIVERY = 3
    DELIVERED = 4

    @property
    def label_vi(self) -> str:
        return _STATUS_LABELS_VI[self]


_STATUS_LABELS_VI = {
    TrackingStatus.CREATED: "Đã tạo đơn",
    TrackingStatus.PICKED_UP: "Đã lấy hàng",
    TrackingStatus.IN_TRANSIT: "Đang vận chuyển",
    TrackingStatus.OUT_FOR_DELIVERY: "Đang phát",
    TrackingStatus.DELIVERED: "Phát thành công",
}


class _Strict(PlainText):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class PostalParty(_Strict):
    """Sender or receiver of a parcel (personal data: never logged)."""

    FullName: str | None = Field(default=None, min_length=1, max_length=200)
    Phone: str | None = None
    Address: str = Field(min_length=1, max_length=500, description="House number and street.")
    ProvinceCode: str = Field(description="Current (34 provinces) or pre-merger province code.")
    DistrictCode: str | None = Field(default=None, description="Legacy district code, kept as given.")
    WardCode: str = Field(description="Current ward/commune code (since 1 July 2025).")

    @field_validator("Phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not _PHONE.fullmatch(value):
            raise ValueError("must be a phone number of 9 to 12 digits, optionally starting with +")
        return value

    @field_validator("ProvinceCode")
    @classmethod
    def _province(cls, value: str) -> str:
        return current_province_code(value)

    @field_validator("DistrictCode")
    @classmethod
    def _district(cls, value: str | None) -> str | None:
        if value is not None and not (value.isdigit() and len(value) <= 5):
            raise ValueError(f"must be digits (a legacy district code such as '001'), got {value!r}")
        return value

    @field_validator("WardCode")
    @classmethod
    def _ward_in_province(cls, value: str, info: ValidationInfo) -> str:
        province = info.data.get("ProvinceCode")
        if province is None:  # the province code was already refused
            return value
        return ward_in_province(value, str(province))


class PostalOrder(_Strict):
    """``postal.order``: ask VNPost to carry a dossier (pickup) or a result (delivery) for a dossier.

    ``Direction`` ``result``: the agency sends the result to the applicant (``Sender`` defaults to the
    agency configured for the VNPost target). ``dossier``: VNPost picks the dossier up from the
    applicant and brings it to the agency (``Receiver`` defaults to the agency). The applicant's
    name and phone, when left out, come from the dossier's latest state in the hub.
    """

    MaHoSo: str
    Direction: Literal["result", "dossier"] = "result"
    Receiver: PostalParty | None = None
    Sender: PostalParty | None = None
    CODAmount: StrictInt = Field(default=0, ge=0, le=1_000_000_000, description="Cash on delivery, VND.")
    ServiceName: str | None = Field(default=None, max_length=50, description="VNPost service; target default.")
    Note: str | None = Field(default=None, max_length=500)

    @field_validator("MaHoSo")
    @classmethod
    def _dossier_code(cls, value: str) -> str:
        return check_dossier_code(value)

    @model_validator(mode="after")
    def _applicant_address(self) -> PostalOrder:
        applicant = self.Receiver if self.Direction == "result" else self.Sender
        if applicant is None:
            side = "Receiver" if self.Direction == "result" else "Sender"
            raise ValueError(
                f"{side} (the applicant's address) is required when Direction is {self.Direction!r}; the hub "
                "knows the agency's address but not the applicant's"
            )
        return self


class PostalCancel(_Strict):
    """``postal.cancel``: cancel a parcel that VNPost has not picked up yet."""

    MaHoSo: str
    ItemCode: str | None = Field(
        default=None, max_length=64, description="The parcel; the dossier's only open parcel when left out."
    )
    Reason: str = Field(min_length=1, max_length=500)

    @field_validator("MaHoSo")
    @classmethod
    def _dossier_code(cls, value: str) -> str:
        return check_dossier_code(value)


class TrackingEvent(_Strict):
    Status: StrictInt = Field(ge=0, le=4)
    StatusName: str
    Time: PortalTimestamp
    PostOffice: str | None = None
    Note: str | None = None


class PostalStatusChanged(_Strict):
    """``postal.status_changed``: a parcel reached a new tracking status (``History`` holds every status so far)."""

    MaHoSo: str
    ItemCode: str
    OrderNumber: str
    Direction: Literal["result", "dossier"]
    Status: StrictInt = Field(ge=0, le=4)
    StatusName: str
    Time: PortalTimestamp
    PostOffice: str | None = None
    Note: str | None = None
    History: list[TrackingEvent] = Field(default_factory=list)

    @field_validator("MaHoSo")
    @classmethod
    def _dossier_code(cls, value: str) -> str:
        return check_dossier_code(value)
