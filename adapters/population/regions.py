"""Administrative codes in population-database addresses, checked against the current list.

Since 1 July 2025 Vietnam has 34 provinces and two levels of local government. The population
database and older systems still send codes of the 63 former provinces and of districts
(MaQuanHuyen). The current list and the mapping of former province codes are
:mod:`schemas.administrative_units` (``vietnam-provinces`` and Resolution 202/2025/QH15). An
answer from the population database is never refused for its codes: a code that is not current
is kept and explained in ``CanhBao``. Ward codes of before the reform are not mapped (the package
has no history).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vietnam_provinces import Province, ProvinceCode, Ward, WardCode

from schemas.administrative_units import current_province_code
from schemas.population import Address

__all__ = ["address_from_wire", "province_name"]


def _current_province(code: str) -> Province | None:
    if not code.isdigit():
        return None
    try:
        return Province.from_code(ProvinceCode(int(code)))
    except ValueError:
        return None


def _current_ward(code: str) -> Ward | None:
    if not code.isdigit():
        return None
    try:
        return Ward.from_code(WardCode(int(code)))
    except ValueError:
        return None


def province_name(code: str) -> str | None:
    province = _current_province(code)
    return province.name if province else None


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def address_from_wire(raw: Mapping[str, Any] | None) -> Address | None:
    """Map a DiaChi {MaTinhThanh, MaQuanHuyen, MaPhuongXa, ChiTiet} to the canonical address."""
    if not raw:
        return None
    warnings: list[str] = []
    province_code = _text(raw, "MaTinhThanh")
    former: str | None = None
    province: Province | None = None
    if province_code is not None:
        province_code = province_code.zfill(2) if province_code.isdigit() else province_code
        try:
            current = current_province_code(province_code)
        except ValueError:
            warnings.append(f"MaTinhThanh {province_code} is not a province code.")
        else:
            if current != province_code:
                former, province_code = province_code, current
            province = _current_province(province_code)
            if former is not None:
                warnings.append(
                    f"MaTinhThanh {former} is a province code from before 1 July 2025; "
                    f"it is now part of {province.name if province else province_code} ({province_code})."
                )
    ward_code = _text(raw, "MaPhuongXa")
    ward: Ward | None = None
    if ward_code is not None:
        ward_code = ward_code.zfill(5) if ward_code.isdigit() else ward_code
        ward = _current_ward(ward_code)
        if ward is None:
            warnings.append(
                f"MaPhuongXa {ward_code} is not a current ward/commune code (it may be one from before 1 July 2025)."
            )
        elif province is not None and ward.province_code != province.code:
            warnings.append(f"MaPhuongXa {ward_code} ({ward.name}) is not in province {province_code}.")
    return Address(
        MaTinhThanh=province_code,
        TenTinhThanh=province.name if province else None,
        MaTinhThanhCu=former,
        MaQuanHuyen=_text(raw, "MaQuanHuyen"),
        MaPhuongXa=ward_code,
        TenPhuongXa=ward.name if ward else None,
        ChiTiet=_text(raw, "ChiTiet"),
        CanhBao=warnings,
    )
