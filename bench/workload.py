"""The messages every benchmark sends: clearly fake ``dossier.upserted`` payloads of about 1 KB.

The hub and the hand-written baselines carry the same bytes: an envelope of :data:`BODY_BYTES`
on the broker, and the same ``DongBoHoSoMC`` request to the mock portal. Every message has its
own dossier code, so the mock portal sees a create for a new dossier each time (no "đã tồn tại"
retries that would make one side do more calls than the other).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from hub.envelope import Envelope, encode_envelope, new_message_id

__all__ = [
    "BODY_BYTES",
    "MESSAGE_TYPE",
    "SOURCE",
    "dossier_code",
    "dossier_payload",
    "envelope_body",
    "ingress_body",
    "portal_request",
]

MESSAGE_TYPE = "dossier.upserted"
SOURCE = "onestop"
#: Size of the envelope on the broker (JSON bytes) that the payload is padded to.
BODY_BYTES = 1024


def dossier_code(run: str, n: int) -> str:
    """A dossier code unique to ``run`` and ``n`` that passes the schema (``<agency>-<YYMMDD>-<NNNN>``)."""
    return f"B{run}.{n}-261126-0001"


def _base_payload(code: str) -> dict[str, Any]:
    return {
        "MaHoSo": code,
        "MaTTHC": "1.001193",
        "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "G09-TP03",
        "TenLinhVuc": "Hộ tịch",
        "KenhThucHien": 2,
        "ChuHoSo": "Nguyễn Thị Đo Hiệu Năng",
        "LoaiDoiTuong": 1,
        "SoDienThoai": "0900000001",
        "Email": "do.hieu.nang@example.vn",
        "NgayTiepNhan": "20261126083000",
        "NgayHenTra": "20261127170000",
        "TrangThaiHoSo": 1,
        "DonViXuLy": "UBND xã Thử Nghiệm",
        "DinhDanhCHS": [{"LoaiDinhDanh": 1, "SoDinhDanh": "001000000001"}],
        "TrichYeuHoSo": "",
    }


def _padding() -> str:
    """ASCII filler for TrichYeuHoSo so that an envelope is :data:`BODY_BYTES` long."""
    code = dossier_code("x" * 8, 10_000_000)
    probe = _base_payload(code)
    size = len(_encode(probe, code))
    return "Đo hiệu năng. " + "x" * max(0, BODY_BYTES - size - len("Đo hiệu năng. ".encode()))


def _encode(payload: dict[str, Any], code: str) -> bytes:
    envelope = Envelope(
        id=new_message_id(),
        seq=1_000_000,
        type=MESSAGE_TYPE,
        source=SOURCE,
        dossier_code=code,
        payload=payload,
        accepted_at=datetime(2026, 11, 26, 8, 30, tzinfo=UTC),
    )
    return encode_envelope(envelope)


_PADDING = _padding()


def dossier_payload(code: str) -> dict[str, Any]:
    payload = _base_payload(code)
    payload["TrichYeuHoSo"] = _PADDING
    return payload


def envelope_body(code: str, seq: int = 1) -> bytes:
    """The broker body the hub would carry for this dossier (used by the raw baselines)."""
    envelope = Envelope(seq=seq, type=MESSAGE_TYPE, source=SOURCE, dossier_code=code, payload=dossier_payload(code))
    return encode_envelope(envelope)


def ingress_body(code: str) -> bytes:
    """The body a one-stop system posts to ``POST /v1/messages``."""
    return orjson.dumps({"type": MESSAGE_TYPE, "payload": dossier_payload(code)})


def portal_request(payload: dict[str, Any]) -> bytes:
    """The ``DongBoHoSoMC`` body for a new dossier, as the hub's adapter sends it."""
    return orjson.dumps({"isUpdating": False, "data": [payload]})
