"""Province and ward codes, checked against the current list of administrative units.

Since 1 July 2025 Vietnam has 34 provinces and two levels of local government (province, then
ward/commune); district codes are legacy. Older systems still send the 63 pre-merger province
codes and a district code: both are accepted. A pre-merger province code is mapped to the province
that absorbed it (Resolution 202/2025/QH15); the ward code must be a current ward of that province.
The current list comes from the ``vietnam-provinces`` package.
"""

from __future__ import annotations

from functools import cache

from vietnam_provinces import Province, ProvinceCode, Ward, WardCode

__all__ = ["LEGACY_PROVINCE_GROUPS", "current_province_code", "province_name", "ward_in_province"]

#: Pre-merger province codes grouped by the province they form since 1 July 2025 (one group per
#: merged province; exactly one code of each group is still a current code).
LEGACY_PROVINCE_GROUPS: tuple[tuple[int, ...], ...] = (
    (2, 8),  # Hà Giang + Tuyên Quang -> Tuyên Quang
    (10, 15),  # Lào Cai + Yên Bái -> Lào Cai
    (6, 19),  # Bắc Kạn + Thái Nguyên -> Thái Nguyên
    (17, 25, 26),  # Hòa Bình + Phú Thọ + Vĩnh Phúc -> Phú Thọ
    (24, 27),  # Bắc Giang + Bắc Ninh -> Bắc Ninh
    (33, 34),  # Hưng Yên + Thái Bình -> Hưng Yên
    (30, 31),  # Hải Dương + Hải Phòng -> Hải Phòng
    (35, 36, 37),  # Hà Nam + Nam Định + Ninh Bình -> Ninh Bình
    (44, 45),  # Quảng Bình + Quảng Trị -> Quảng Trị
    (48, 49),  # Đà Nẵng + Quảng Nam -> Đà Nẵng
    (51, 62),  # Quảng Ngãi + Kon Tum -> Quảng Ngãi
    (52, 64),  # Bình Định + Gia Lai -> Gia Lai
    (56, 58),  # Khánh Hòa + Ninh Thuận -> Khánh Hòa
    (60, 67, 68),  # Bình Thuận + Đắk Nông + Lâm Đồng -> Lâm Đồng
    (54, 66),  # Phú Yên + Đắk Lắk -> Đắk Lắk
    (74, 77, 79),  # Bình Dương + Bà Rịa-Vũng Tàu + TP HCM -> TP HCM
    (70, 75),  # Bình Phước + Đồng Nai -> Đồng Nai
    (72, 80),  # Tây Ninh + Long An -> Tây Ninh
    (92, 93, 94),  # Cần Thơ + Hậu Giang + Sóc Trăng -> Cần Thơ
    (83, 84, 86),  # Bến Tre + Trà Vinh + Vĩnh Long -> Vĩnh Long
    (82, 87),  # Tiền Giang + Đồng Tháp -> Đồng Tháp
    (95, 96),  # Bạc Liêu + Cà Mau -> Cà Mau
    (89, 91),  # An Giang + Kiên Giang -> An Giang
)


@cache
def _current_codes() -> frozenset[int]:
    return frozenset(int(p.code) for p in Province.iter_all())


@cache
def _legacy_map() -> dict[int, int]:
    current = _current_codes()
    mapping: dict[int, int] = {}
    for group in LEGACY_PROVINCE_GROUPS:
        survivors = [code for code in group if code in current]
        if len(survivors) != 1:  # the package's list changed; ignore the group rather than guess
            continue
        mapping.update({code: survivors[0] for code in group if code != survivors[0]})
    return mapping


def _as_number(code: str, what: str) -> int:
    text = code.strip()
    if not text.isdigit() or len(text) > 5:
        raise ValueError(f"{what} must be digits such as '01' or '00004', got {code!r}")
    return int(text)


def current_province_code(code: str) -> str:
    """The current two-digit province code for ``code`` (a current or a pre-merger code).

    Raises ValueError with a sentence when it is neither.
    """
    number = _as_number(code, "ProvinceCode")
    if number in _current_codes():
        return f"{number:02d}"
    merged_into = _legacy_map().get(number)
    if merged_into is not None:
        return f"{merged_into:02d}"
    raise ValueError(f"ProvinceCode {code!r} is not a province code, current or from before 1 July 2025")


def province_name(code: str) -> str:
    return Province.from_code(ProvinceCode(int(current_province_code(code)))).name


def ward_in_province(ward_code: str, province_code: str) -> str:
    """The five-digit ward code when ``ward_code`` is a current ward of ``province_code``.

    ``province_code`` must already be current (see :func:`current_province_code`).
    """
    number = _as_number(ward_code, "WardCode")
    try:
        ward = Ward.from_code(WardCode(number))
    except ValueError:
        raise ValueError(
            f"WardCode {ward_code!r} is not a current ward or commune code; since 1 July 2025 wards have new "
            "codes, look it up in the current list"
        ) from None
    if int(ward.province_code) != int(province_code):
        raise ValueError(
            f"WardCode {ward_code!r} ({ward.name}) is in province {int(ward.province_code):02d}, "
            f"not in province {province_code}"
        )
    return f"{number:05d}"
