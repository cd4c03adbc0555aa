"""Valid, clearly fake dossier payloads with unique dossier codes."""

from __future__ import annotations

import itertools
import random
from typing import Any

_counter = itertools.count(random.randint(1, 400_000))  # unique per run, spread across runs


def dossier_code() -> str:
    n = next(_counter)
    return f"H15.50.05.13-{261001 + n // 9000:06d}-{n % 9000 + 1000:04d}"


def dossier(code: str | None = None, status: int = 1, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "MaHoSo": code or dossier_code(),
        "MaTTHC": "1.001193",
        "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "G09-TP03",
        "TenLinhVuc": "Hộ tịch",
        "KenhThucHien": 2,
        "ChuHoSo": "Nguyễn Thị Thử Nghiệm",
        "LoaiDoiTuong": 1,
        "SoDienThoai": "0900000001",
        "Email": "thu.nghiem@example.vn",
        "NgayTiepNhan": "20261126083000",
        "NgayHenTra": "20261127170000",
        "TrangThaiHoSo": status,
        "DinhDanhCHS": [{"LoaiDinhDanh": 1, "SoDinhDanh": "001000000001"}],
    }
    if status == 10:
        payload["NgayTra"] = "20261127160000"
    payload.update(fields)
    return payload


def step(code: str, n: int = 1, status: int = 4, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "MaHoSo": code,
        "NguoiXuLy": "Trần Văn Cán Bộ",
        "ChucDanh": "Chuyên viên",
        "ThoiDiemXuLy": f"20261126{8 + n // 3600:02d}{n // 60 % 60:02d}{n % 60:02d}",
        "PhongBanXuLy": "Bộ phận một cửa",
        "NoiDungXuLy": f"Bước xử lý số {n}",
        "TrangThai": status,
    }
    payload.update(fields)
    return payload
