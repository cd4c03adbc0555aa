"""MaXacThuc: the SHA-256 signature every payment platform message carries.

``MaXacThuc = sha256_hex("<field 1>|<field 2>|…|<field n>|<partner secret>")``: the message's signed
fields in a fixed order, joined by ``|``, with the partner's secret as the last element; UTF-8;
missing values are empty strings; amounts are written as integers. The field order per message
type is :data:`SIGNED_FIELDS`. Signatures are compared in constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["SIGNED_FIELDS", "field_text", "sign", "sign_message", "verify_message"]

#: Signed fields of each message, by (LoaiBanTin, direction).
SIGNED_FIELDS: Mapping[str, tuple[str, ...]] = {
    # hub -> platform
    "INIT": (
        "LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "SoTien", "MaTienTe", "ThongTinGiaoDich", "ThoiGianGD",
    ),
    "QUERY": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"),
    "GET_BILL": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "MaGiaoDich", "ThoiGianGD"),
    "REFUND": (
        "LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "MaGiaoDich", "MaHoanTien", "SoTien", "MaTienTe",
        "LyDo", "ThoiGianGD",
    ),
    # platform -> hub: the result of a payment (callback, and the answer to QUERY)
    "RESULT": (
        "LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "SoTien", "MaTienTe", "MaGiaoDich", "MaNganHang",
        "ThoiGianGD", "ThongTinGiaoDich",
    ),
    # platform -> hub: answers
    "INIT_REPLY": ("LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "UrlThanhToan"),
    "GET_BILL_REPLY": (
        "LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "MaGiaoDich", "SoBienLai", "SoTien", "NgayBienLai",
    ),
    "REFUND_REPLY": ("LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "MaHoanTien", "SoTien"),
}  # fmt: skip


def field_text(value: Any) -> str:
    """How one value is written into the signed string (None -> empty, ints as digits, text as NFC)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        raise TypeError("a signed field cannot be a boolean")
    if isinstance(value, float):
        raise TypeError("amounts are integers in VND; a float cannot be signed")
    if isinstance(value, int):
        return str(value)
    return unicodedata.normalize("NFC", str(value))


def sign(values: Sequence[Any], secret: str) -> str:
    """The lowercase hex SHA-256 of the values joined by ``|`` with the secret last."""
    text = "|".join([*(field_text(v) for v in values), secret])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sign_message(kind: str, message: Mapping[str, Any], secret: str) -> str:
    """MaXacThuc of ``message`` whose signed fields are those of ``kind`` (a key of SIGNED_FIELDS)."""
    return sign([message.get(name) for name in SIGNED_FIELDS[kind]], secret)


def verify_message(kind: str, message: Mapping[str, Any], secret: str) -> bool:
    """True when ``message['MaXacThuc']`` is the signature of its ``kind`` fields (constant-time compare)."""
    given = message.get("MaXacThuc")
    if not isinstance(given, str) or not given:
        return False
    try:
        expected = sign_message(kind, message, secret)
    except TypeError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("utf-8", "replace"))
