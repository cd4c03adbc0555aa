"""VNPost's REST messages, with its field names.

Every answer is HTTP 200 ``{"Status": "...", "Message": "...", "Data": ...}``: ``"100"`` done,
``"101"`` accepted; anything else is an error (:data:`STATUS_MEANINGS`). An expired or unknown
token is HTTP 401. The access token from ``getToken`` goes in the ``h-token`` header.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "STATUS_ACCEPTED",
    "STATUS_CANNOT_CANCEL",
    "STATUS_DUPLICATE_ORDER",
    "STATUS_MEANINGS",
    "STATUS_NOT_FOUND",
    "STATUS_OK",
    "TOKEN_HEADER",
    "OrderData",
    "TokenData",
    "TrackingData",
    "TrackingEventWire",
    "VNPostReply",
]

TOKEN_HEADER = "h-token"  # noqa: S105 - a header name

STATUS_OK = "100"
STATUS_ACCEPTED = "101"
STATUS_INVALID = "102"
STATUS_DUPLICATE_ORDER = "103"
STATUS_NOT_FOUND = "104"
STATUS_CANNOT_CANCEL = "105"
STATUS_BAD_CREDENTIALS = "106"
STATUS_SYSTEM_ERROR = "500"

STATUS_MEANINGS = {
    STATUS_OK: "done",
    STATUS_ACCEPTED: "accepted",
    STATUS_INVALID: "the request has invalid data",
    STATUS_DUPLICATE_ORDER: "an open order with this OrderNumber already exists",
    STATUS_NOT_FOUND: "no such order",
    STATUS_CANNOT_CANCEL: "the parcel was already picked up and cannot be cancelled",
    STATUS_BAD_CREDENTIALS: "wrong username or password",
    STATUS_SYSTEM_ERROR: "VNPost's system failed",
}


class VNPostReply(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    Status: str
    Message: str | None = None
    Data: Any = None

    @property
    def ok(self) -> bool:
        return self.Status in (STATUS_OK, STATUS_ACCEPTED)


class TokenData(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    Token: str = Field(min_length=1)
    ExpiresIn: float = Field(default=3600, gt=0)


class OrderData(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    ItemCode: str = Field(min_length=1)
    OrderNumber: str | None = None
    TotalFee: int | None = None
    Status: int | None = None


class TrackingEventWire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    Status: int = Field(ge=0, le=4)
    StatusName: str | None = None
    Time: str = Field(pattern=r"^\d{14}$")
    PostOffice: str | None = None
    Note: str | None = None


class TrackingData(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    ItemCode: str
    OrderNumber: str | None = None
    Status: int | None = None
    Events: list[TrackingEventWire] = Field(default_factory=list)


class StatusCallback(BaseModel):
    """A tracking event VNPost posts to the hub (``POST /v1/callbacks/vnpost``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    ItemCode: str = Field(min_length=1, max_length=64)
    OrderNumber: str | None = Field(default=None, max_length=64)
    Status: int = Field(ge=0, le=4)
    StatusName: str | None = Field(default=None, max_length=100)
    Time: str = Field(pattern=r"^\d{14}$")
    PostOffice: str | None = Field(default=None, max_length=200)
    Note: str | None = Field(default=None, max_length=1000)

    def event(self) -> TrackingEventWire:
        return TrackingEventWire(
            Status=self.Status, StatusName=self.StatusName, Time=self.Time, PostOffice=self.PostOffice, Note=self.Note
        )


def order_body(fields: dict[str, Any]) -> dict[str, Any]:
    """A postOrder body without the keys that are None."""
    return {k: v for k, v in fields.items() if v is not None}
