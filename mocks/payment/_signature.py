"""MaXacThuc as the payment platform computes it, written from ``shared/domain.md`` alone.

The platform signs a message with the lowercase hex SHA-256 of its fields joined by ``|``, the
partner's secret last: ``sha256("LoaiBanTin|MaLoi|…|ThongTinGiaoDich|<secret>")``, UTF-8. A field the
message lacks counts as an empty string; amounts (SoTien) are written as integers; text is compared
in NFC, since the national systems compare it byte for byte.

The mock shares no code with the hub's payment adapter on purpose: a mistake in the adapter's
signing shows up as a rejected message (MaLoi 97) in the contract tests instead of being repeated
here. ``shared/domain.md`` names the fields of INIT and the order of the result (RESULT); for the
other messages the platform follows the same rule — LoaiBanTin first, then the message's fields in
the order it lists them.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Mapping
from typing import Any

__all__ = ["FIELD_ORDER", "is_signed", "signature"]

#: The fields each message is signed over, in order, by LoaiBanTin (the platform's answers end in _REPLY).
FIELD_ORDER: Mapping[str, tuple[str, ...]] = {
    # from the partner (the hub)
    "INIT": (
        "LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "SoTien", "MaTienTe", "ThongTinGiaoDich", "ThoiGianGD",
    ),
    "QUERY": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"),
    "GET_BILL": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "MaGiaoDich", "ThoiGianGD"),
    "REFUND": (
        "LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "MaGiaoDich", "MaHoanTien", "SoTien", "MaTienTe",
        "LyDo", "ThoiGianGD",
    ),
    # from the platform: the result of a payment (callback and answer to QUERY), as domain.md lists it
    "RESULT": (
        "LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "SoTien", "MaTienTe", "MaGiaoDich", "MaNganHang",
        "ThoiGianGD", "ThongTinGiaoDich",
    ),
    "INIT_REPLY": ("LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "UrlThanhToan"),
    "GET_BILL_REPLY": (
        "LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "MaGiaoDich", "SoBienLai", "SoTien", "NgayBienLai",
    ),
    "REFUND_REPLY": ("LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "MaHoanTien", "SoTien"),
}  # fmt: skip


class _UnsignableError(ValueError):
    """A field the platform cannot write into the signed text (a boolean, a fractional amount)."""


def _written(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | float):
        raise _UnsignableError(f"{value!r} cannot be signed")
    if isinstance(value, int):
        return str(value)
    return unicodedata.normalize("NFC", str(value))


def signature(kind: str, message: Mapping[str, Any], secret: str) -> str:
    """MaXacThuc of ``message`` signed as ``kind`` (a key of :data:`FIELD_ORDER`) with ``secret``."""
    text = "|".join([*(_written(message.get(name)) for name in FIELD_ORDER[kind]), secret])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_signed(kind: str, message: Mapping[str, Any], secret: str) -> bool:
    """True when the message's MaXacThuc is its signature as ``kind`` (compared in constant time)."""
    given = message.get("MaXacThuc")
    if not isinstance(given, str) or not given:
        return False
    try:
        expected = signature(kind, message, secret)
    except _UnsignableError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("utf-8", "replace"))
