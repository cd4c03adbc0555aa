"""Deterministic, clearly fake dossiers of a provincial one-stop system ("Hệ thống một cửa").

``DossierGenerator(seed)`` is a stream of dossiers received by one agency: each has a dossier code
``<agency>-<YYMMDD>-<NNNN>`` from a daily counter, an applicant, a procedure from the sample
catalogue (``mocks/national_portal/procedures.json``, the mock portal's) and a lifecycle of hub messages::

    dossier.upserted 1 (new)      -> dossier.progress 1
    dossier.upserted 2 (accepted) -> dossier.progress 2
    dossier.upserted 4 (processing) -> dossier.progress 4
    dossier.upserted 9 (finished) -> dossier.progress 9
    dossier.upserted 10 (result returned, with NgayTra) -> dossier.progress 10

Everything personal is fake and recognisably so:

* Personal ID numbers (12-digit CCCD, and 9-digit old CMND for some applicants) and business
  tax codes (10 digits) all start with :data:`FAKE_ID_PREFIX` ``"0010000"``. For a 12-digit ID that
  reads "province 001, sex/century digit 0, birth year 00": a man born in 1900, which no applicant
  is; tax codes never start with ``00``.
* Phone numbers start with :data:`FAKE_PHONE_PREFIX` ``"0900000"``.
* E-mail addresses are at ``example.com`` and file links at ``onestop.example`` (reserved names,
  RFC 2606).
* Names are drawn from common Vietnamese family, middle and given names; any match with a real
  person is a coincidence.

The same seed gives the same dossiers, byte for byte, so a rerun resends the same idempotency keys.
A share of dossiers (``nfd_ratio``) carries its Vietnamese text in decomposed NFD form, as some
older keyboards and systems send it; normalised to NFC every payload validates against
``schemas.dossier``.

Times are Asia/Ho_Chi_Minh wall time in ``yyyyMMddHHmmss``. Reception happens in office hours
(Monday–Friday, 7:30–11:30 and 13:30–17:00); public holidays are not modelled.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_AGENCY_CODE",
    "DEFAULT_START_DAY",
    "FAKE_ID_PREFIX",
    "FAKE_PHONE_PREFIX",
    "LIFECYCLE_STATUSES",
    "CatalogueProcedure",
    "DossierGenerator",
    "LifecycleMessage",
    "MessageType",
    "load_catalogue",
    "to_nfc",
]

DEFAULT_AGENCY_CODE = "H15.50.05.13"
#: First reception day when none is given (a Monday), so that a seed alone fixes every dossier.
DEFAULT_START_DAY = date(2026, 10, 5)
#: Every fake ID number and tax code starts with this (see the module docstring).
FAKE_ID_PREFIX = "0010000"
FAKE_PHONE_PREFIX = "0900000"
#: TrangThaiHoSo values a dossier goes through, in order.
LIFECYCLE_STATUSES: tuple[int, ...] = (1, 2, 4, 9, 10)

MessageType = Literal["dossier.upserted", "dossier.progress"]

_VIETNAM: tzinfo
try:
    _VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
except ZoneInfoNotFoundError:  # no tz database (e.g. Windows without tzdata): UTC+7, no DST since 1975
    _VIETNAM = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")

_OFFICE_PERIODS: tuple[tuple[time, time], ...] = ((time(7, 30), time(11, 30)), (time(13, 30), time(17, 0)))
_TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"
#: The agency part of a dossier code ``<agency code>-<YYMMDD>-<NNNN>`` (shared/domain.md): letters, digits, dots.
_AGENCY_CODE = re.compile(r"^[A-Z0-9][A-Za-z0-9.]{0,39}$")


@dataclass(frozen=True, slots=True)
class LifecycleMessage:
    """One message for the hub's ingress API, with the key that makes resending it safe."""

    type: MessageType
    payload: dict[str, Any]
    idempotency_key: str
    dossier_code: str
    status: int

    def body(self) -> dict[str, Any]:
        """The JSON body of ``POST /v1/messages``."""
        return {"type": self.type, "payload": self.payload}


@dataclass(frozen=True, slots=True)
class CatalogueProcedure:
    """One procedure (TTHC) of the catalogue, with its wire field names' values."""

    MaTTHC: str
    TenTTHC: str
    MaLinhVuc: str
    TenLinhVuc: str
    SoNgayGiaiQuyet: int
    LePhi: int


def load_catalogue(path: Path | None = None) -> list[CatalogueProcedure]:
    """Read a procedure catalogue; by default the mock portal's sample (``mocks/national_portal/procedures.json``)."""
    if path is None:
        text = resources.files("mocks.national_portal").joinpath("procedures.json").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    entries = json.loads(text)["procedures"]
    return [
        CatalogueProcedure(
            MaTTHC=str(entry["MaTTHC"]),
            TenTTHC=str(entry["TenTTHC"]),
            MaLinhVuc=str(entry["MaLinhVuc"]),
            TenLinhVuc=str(entry["TenLinhVuc"]),
            SoNgayGiaiQuyet=int(entry["SoNgayGiaiQuyet"]),
            LePhi=int(entry["LePhi"]),
        )
        for entry in entries
    ]


def to_nfc(value: Any) -> Any:
    """``value`` with every string (keys included) normalised to NFC, recursively."""
    return _map_strings(value, "NFC")


def _map_strings(value: Any, form: Literal["NFC", "NFD"]) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize(form, value)
    if isinstance(value, dict):
        return {_map_strings(k, form): _map_strings(v, form) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, form) for v in value]
    return value


# --- Names -------------------------------------------------------------------------------------

_FAMILY_NAMES: tuple[tuple[str, int], ...] = (
    ("Nguyễn", 38),
    ("Trần", 11),
    ("Lê", 9),
    ("Phạm", 7),
    ("Hoàng", 5),
    ("Huỳnh", 4),
    ("Phan", 4),
    ("Vũ", 4),
    ("Võ", 3),
    ("Đặng", 2),
    ("Bùi", 2),
    ("Đỗ", 2),
    ("Hồ", 2),
    ("Ngô", 2),
    ("Dương", 1),
    ("Lý", 1),
    ("Đinh", 1),
    ("Trịnh", 1),
)
_MIDDLE_NAMES = {
    "m": ("Văn", "Đức", "Minh", "Quang", "Hữu", "Công", "Thành", "Xuân", "Tuấn", "Gia", "Đình", "Quốc"),
    "f": ("Thị", "Ngọc", "Thu", "Thanh", "Minh", "Phương", "Hồng", "Kim", "Mai", "Bảo", "Diệu", "Khánh"),
}
_GIVEN_NAMES = {
    "m": (
        "An", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hiếu", "Hùng", "Huy", "Khang", "Khoa", "Long",
        "Nam", "Phong", "Phúc", "Quân", "Sơn", "Thắng", "Trung", "Tuấn", "Việt", "Vinh", "Lộc", "Đức",
    ),
    "f": (
        "Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hoa", "Hương", "Lan", "Linh", "Loan",
        "Mai", "Ngọc", "Nhung", "Oanh", "Phương", "Quyên", "Thảo", "Trang", "Tuyết", "Vân", "Yến", "Huyền",
    ),
}  # fmt: skip
_BUSINESS_KINDS = ("Công ty TNHH", "Công ty cổ phần", "Hợp tác xã")
_BUSINESS_TRADES = ("Xây dựng", "Thương mại và Dịch vụ", "Đầu tư Phát triển", "Nông sản", "Vận tải")
_BUSINESS_NAMES = ("Sao Mai", "Bình Minh", "Hồng Hà", "Trường Thành", "Phú Gia", "An Khang", "Tân Tiến")

#: Fields whose procedures businesses also file (land, construction); the others are for citizens.
_BUSINESS_FIELDS = frozenset({"G14-TN01", "G12-XD02"})

_DEPARTMENTS = {
    "G09": "Phòng Tư pháp",
    "G13": "Phòng Quản lý đô thị và Giao thông",
    "G14": "Phòng Tài nguyên và Môi trường",
    "G12": "Phòng Kinh tế, Hạ tầng và Đô thị",
    "G08": "Phòng Kinh tế",
}
_DESK = "Bộ phận Tiếp nhận và Trả kết quả"
_LEADERSHIP = "Lãnh đạo UBND"

_DOCUMENTS = (
    "Tờ khai theo mẫu quy định",
    "Bản sao giấy tờ tùy thân",
    "Giấy ủy quyền",
    "Bản chụp giấy tờ chứng minh nơi cư trú",
    "Ảnh chân dung 4x6",
    "Bản vẽ, sơ đồ kèm theo",
)

_SUBMISSION_NOTE = {
    1: "Công dân nộp hồ sơ trực tiếp tại Bộ phận Một cửa; đã kiểm tra sơ bộ thành phần hồ sơ.",
    2: "Hồ sơ được nộp trực tuyến trên Cổng Dịch vụ công; đã kiểm tra sơ bộ thành phần hồ sơ.",
    3: "Hồ sơ được nhận qua dịch vụ bưu chính công ích; đã kiểm tra sơ bộ thành phần hồ sơ.",
}
_RETURN_NOTE = {
    0: "Đã trả kết quả giải quyết cho người nộp tại Bộ phận Một cửa.",
    1: "Đã chuyển kết quả giải quyết cho người nộp qua dịch vụ bưu chính công ích.",
}


@dataclass(frozen=True, slots=True)
class _Official:
    name: str
    title: str
    department: str


@dataclass(frozen=True, slots=True)
class _Applicant:
    name: str
    kind: Literal[1, 2]
    document_number: str
    identifiers: list[dict[str, Any]]
    email: str | None
    phone: str


class DossierGenerator:
    """A deterministic stream of fake dossiers received by one agency, as hub message lifecycles.

    The generator is a stream: each call to :meth:`lifecycle` or :meth:`next_lifecycle` continues
    where the previous one stopped (codes, reception times and the daily counter carry on), and
    two generators with the same arguments produce the same stream.
    """

    def __init__(
        self,
        seed: int,
        agency_code: str = DEFAULT_AGENCY_CODE,
        *,
        nfd_ratio: float = 0.2,
        start_day: date = DEFAULT_START_DAY,
        catalogue: Sequence[CatalogueProcedure] | None = None,
    ) -> None:
        if not 0.0 <= nfd_ratio <= 1.0:
            raise ValueError(f"nfd_ratio must be between 0 and 1, got {nfd_ratio}")
        if not _AGENCY_CODE.match(agency_code):
            raise ValueError(
                f"agency_code {agency_code!r} cannot start a dossier code: use the agency's code "
                "such as H15.50.05.13 (letters, digits and dots)"
            )
        self.seed = seed
        self.agency_code = agency_code
        self.nfd_ratio = nfd_ratio
        self._catalogue = list(catalogue) if catalogue is not None else load_catalogue()
        if not self._catalogue:
            raise ValueError("The procedure catalogue is empty: give at least one procedure.")
        self._clock_rng = random.Random(f"onestop-clock:{seed}")
        self._index = 0
        self._counter_day: date | None = None
        self._counter = 0
        self._clock = _add_working_minutes(datetime.combine(start_day, time(0, 0), _VIETNAM), 0)
        staff_rng = random.Random(f"onestop-staff:{seed}:{agency_code}")
        self._desk_staff = [_Official(_person_name(staff_rng), "Công chức Bộ phận Một cửa", _DESK) for _ in range(3)]
        self._leaders = [
            _Official(_person_name(staff_rng), title, _LEADERSHIP)
            for title in ("Chủ tịch UBND", "Phó Chủ tịch UBND", "Phó Chủ tịch UBND")
        ]
        self._specialists = {
            prefix: [_Official(_person_name(staff_rng), "Chuyên viên", department) for _ in range(2)]
            for prefix, department in _DEPARTMENTS.items()
        }

    def lifecycle(self, n: int | None) -> Iterator[list[LifecycleMessage]]:
        """The next ``n`` dossiers (None: without end), each as its ordered list of ten messages."""
        if n is not None and n < 0:
            raise ValueError(f"n must be 0 or more, got {n}")
        return self._lifecycles(n)

    def _lifecycles(self, n: int | None) -> Iterator[list[LifecycleMessage]]:
        produced = 0
        while n is None or produced < n:
            produced += 1
            yield self.next_lifecycle()

    def next_lifecycle(self) -> list[LifecycleMessage]:
        """The ordered messages of the next dossier: upserted then progress, for each status."""
        index = self._index
        self._index += 1
        received = self._next_reception_time()
        code = self._next_dossier_code(received)
        rng = random.Random(f"onestop-dossier:{self.seed}:{self.agency_code}:{index}")
        messages = self._build_lifecycle(rng, code, received)
        if rng.random() < self.nfd_ratio:
            messages = [replace(m, payload=_map_strings(m.payload, "NFD")) for m in messages]
        return messages

    # --- Clock and dossier codes -----------------------------------------------------------

    def _next_reception_time(self) -> datetime:
        self._clock = _add_working_minutes(self._clock, self._clock_rng.randint(3, 40))
        return self._clock

    def _next_dossier_code(self, received: datetime) -> str:
        day = received.date()
        if day != self._counter_day:
            self._counter_day, self._counter = day, 0
        self._counter += 1
        return f"{self.agency_code}-{day:%y%m%d}-{self._counter:04d}"

    # --- One dossier ------------------------------------------------------------------------

    def _build_lifecycle(self, rng: random.Random, code: str, received: datetime) -> list[LifecycleMessage]:
        procedure = rng.choice(self._catalogue)
        channel: Literal[1, 2, 3] = rng.choices((1, 2, 3), weights=(40, 55, 5))[0]
        applicant = _applicant(rng, procedure, channel)
        delivery = 1 if channel == 3 or rng.random() < 0.1 else 0
        paid_online = int(channel == 2 and procedure.LePhi > 0 and rng.random() < 0.7)
        due = _add_working_days(received, procedure.SoNgayGiaiQuyet)
        times = _step_times(rng, received, due)

        dossier: dict[str, Any] = {
            "MaHoSo": code,
            "MaTTHC": procedure.MaTTHC,
            "TenTTHC": procedure.TenTTHC,
            "MaLinhVuc": procedure.MaLinhVuc,
            "TenLinhVuc": procedure.TenLinhVuc,
            "KenhThucHien": channel,
            "ChuHoSo": applicant.name,
            "LoaiDoiTuong": applicant.kind,
            "MaDoiTuong": applicant.document_number,
            "SoGiayToChuHoSo": applicant.document_number,
            "SoDienThoai": applicant.phone,
            "TrichYeuHoSo": f"{procedure.TenTTHC} – hồ sơ của {applicant.name}",
            "NgayTiepNhan": _stamp(received),
            "NgayHenTra": _stamp(due),
            "HinhThuc": delivery,
            "DonViXuLy": self.agency_code,
            "TaiLieuNop": _documents(rng),
            "DanhSachLePhi": _fees(procedure, paid_online),
            "DinhDanhCHS": applicant.identifiers,
            "TaiKhoanDuocXacThucVoiVNeID": int(channel == 2),
            "DuocThanhToanTrucTuyen": paid_online,
        }
        if applicant.email is not None:
            dossier["Email"] = applicant.email

        desk = rng.choice(self._desk_staff)
        specialist = rng.choice(self._specialists.get(procedure.MaLinhVuc[:3], self._desk_staff))
        leader = rng.choice(self._leaders)
        steps: list[tuple[int, _Official, str]] = [
            (1, desk, _SUBMISSION_NOTE[channel]),
            (
                2,
                desk,
                f"Hồ sơ đầy đủ, hợp lệ. Tiếp nhận và chuyển {specialist.department} thẩm định.",
            ),
            (4, specialist, f"{specialist.department} đang thẩm định hồ sơ và dự thảo kết quả."),
            (9, leader, "Lãnh đạo đã phê duyệt và ký số kết quả giải quyết."),
            (10, desk, _RETURN_NOTE[delivery]),
        ]

        messages: list[LifecycleMessage] = []
        started = received
        for (status, official, note), at in zip(steps, times, strict=True):
            upserted = {**dossier, "TrangThaiHoSo": status}
            if status == 10:
                upserted["NgayTra"] = _stamp(at)
            progress = {
                "MaHoSo": code,
                "NguoiXuLy": official.name[:50],
                "ChucDanh": official.title,
                "ThoiDiemXuLy": _stamp(at),
                "PhongBanXuLy": official.department,
                "NoiDungXuLy": note,
                "TrangThai": status,
                "NgayBatDau": _stamp(started),
                "NgayKetThucTheoQuyDinh": _stamp(due),
            }
            started = at
            pair: tuple[tuple[MessageType, dict[str, Any]], ...] = (
                ("dossier.upserted", upserted),
                ("dossier.progress", progress),
            )
            for kind, payload in pair:
                messages.append(
                    LifecycleMessage(
                        type=kind,
                        payload=payload,
                        idempotency_key=f"{code}:{kind}:{status}",
                        dossier_code=code,
                        status=status,
                    )
                )
        return messages


# --- Pieces of a dossier -----------------------------------------------------------------------


def _person_name(rng: random.Random) -> str:
    sex = rng.choice(("m", "f"))
    family = rng.choices([n for n, _ in _FAMILY_NAMES], weights=[w for _, w in _FAMILY_NAMES])[0]
    return f"{family} {rng.choice(_MIDDLE_NAMES[sex])} {rng.choice(_GIVEN_NAMES[sex])}"


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    letters = "".join(c for c in folded if not unicodedata.combining(c))
    return ".".join(letters.lower().split())


def _fake_digits(rng: random.Random, length: int, prefix: str) -> str:
    return prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix)))


def _applicant(rng: random.Random, procedure: CatalogueProcedure, channel: int) -> _Applicant:
    phone = _fake_digits(rng, 10, FAKE_PHONE_PREFIX)
    if procedure.MaLinhVuc in _BUSINESS_FIELDS and rng.random() < 0.3:
        name = f"{rng.choice(_BUSINESS_KINDS)} {rng.choice(_BUSINESS_TRADES)} {rng.choice(_BUSINESS_NAMES)}"
        tax_code = _fake_digits(rng, 10, FAKE_ID_PREFIX)
        return _Applicant(name, 2, tax_code, [], f"lienhe.{tax_code[-3:]}@example.com", phone)
    name = _person_name(rng)
    personal_id = _fake_digits(rng, 12, FAKE_ID_PREFIX)
    identifiers: list[dict[str, Any]] = [{"LoaiDinhDanh": 1, "SoDinhDanh": personal_id}]
    if rng.random() < 0.1:  # an older applicant who also gives the 9-digit ID card number
        identifiers.append({"LoaiDinhDanh": 2, "SoDinhDanh": _fake_digits(rng, 9, FAKE_ID_PREFIX)})
    email: str | None = f"{_ascii_slug(name)}.{rng.randrange(1000):03d}@example.com"
    if channel != 2 and rng.random() < 0.3:  # at the desk, many give no e-mail address
        email = None
    return _Applicant(name, 1, personal_id, identifiers, email, phone)


def _documents(rng: random.Random) -> list[dict[str, Any]]:
    files = []
    for title in rng.sample(_DOCUMENTS, rng.randint(1, 3)):
        file_id = f"{rng.getrandbits(64):016x}"
        files.append(
            {
                "TepDinhKemId": file_id,
                "TenTepDinhKem": title,
                "DuongDanTaiTepTin": f"https://onestop.example/files/{file_id}.pdf",
            }
        )
    return files


def _fees(procedure: CatalogueProcedure, paid_online: int) -> list[dict[str, Any]]:
    if procedure.LePhi <= 0:
        return []
    return [
        {
            "TenPhiLePhi": f"Lệ phí {procedure.TenTTHC[:1].lower()}{procedure.TenTTHC[1:]}",
            "MaPhiLePhi": f"LP-{procedure.MaTTHC}",
            # HinhThucThu: 1 paid at the desk, 2 paid online (this mock's convention).
            "HinhThucThu": 2 if paid_online else 1,
            "Gia": procedure.LePhi,
        }
    ]


# --- Working-time arithmetic (weekends only; holidays are not modelled) ------------------------


def _stamp(moment: datetime) -> str:
    return moment.astimezone(_VIETNAM).strftime(_TIMESTAMP_FORMAT)


def _office_periods_from(moment: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The office periods (Monday–Friday) still open at or after ``moment``, clipped to start there."""
    day = moment.date()
    while True:
        if day.weekday() < 5:
            for opens, closes in _OFFICE_PERIODS:
                end = datetime.combine(day, closes, _VIETNAM)
                if end > moment:
                    yield max(datetime.combine(day, opens, _VIETNAM), moment), end
        day += timedelta(days=1)


def _add_working_minutes(moment: datetime, minutes: int) -> datetime:
    """The moment ``minutes`` of office time after ``moment`` (0: ``moment``, or the next opening)."""
    remaining = timedelta(minutes=minutes)
    for start, end in _office_periods_from(moment):
        if start + remaining < end:
            return start + remaining
        remaining -= end - start
    raise AssertionError("unreachable: office periods never run out")  # pragma: no cover


def _working_minutes_between(earlier: datetime, later: datetime) -> int:
    total = timedelta(0)
    for start, end in _office_periods_from(earlier):
        if start >= later:
            break
        total += min(end, later) - start
    return int(total.total_seconds() // 60)


def _add_working_days(moment: datetime, days: int) -> datetime:
    day = moment.date()
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            remaining -= 1
    return datetime.combine(day, moment.time(), _VIETNAM)


def _step_times(rng: random.Random, received: datetime, due: datetime) -> list[datetime]:
    """Times of the five statuses: new at reception, then accepted, processing, finished, returned.

    Each step happens in office hours; processing starts early in the allowed time, the result is
    signed well before the due date and returned by it, except for about one dossier in twenty.
    """
    accepted = _add_working_minutes(received, rng.randint(5, 60))
    span = max(_working_minutes_between(accepted, due), 10)
    processing_after = max(1, round(span * rng.uniform(0.05, 0.3)))
    finished_after = max(processing_after + 1, round(span * rng.uniform(0.5, 0.9)))
    processing = _add_working_minutes(accepted, processing_after)
    finished = _add_working_minutes(accepted, finished_after)
    returned_after = rng.randint(15, 240)
    left_before_due = _working_minutes_between(finished, due)
    if left_before_due > 15 and rng.random() < 0.95:  # about one dossier in twenty is returned late
        returned_after = min(returned_after, left_before_due - 1)
    returned = _add_working_minutes(finished, returned_after)
    return [received, accepted, processing, finished, returned]
