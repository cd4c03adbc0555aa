"""The mock one-stop system's dossier generator: deterministic, valid, fake, in lifecycle order."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from typing import Any

import pytest
from pydantic import BaseModel

from mocks.onestop.generator import (
    FAKE_ID_PREFIX,
    FAKE_PHONE_PREFIX,
    LIFECYCLE_STATUSES,
    DossierGenerator,
    LifecycleMessage,
    load_catalogue,
    to_nfc,
)
from schemas.dossier import DOSSIER_CODE_PATTERN, DossierProgress, DossierUpserted, parse_portal_timestamp

MODELS: dict[str, type[BaseModel]] = {
    "dossier.upserted": DossierUpserted,
    "dossier.progress": DossierProgress,
}


def _lifecycles(seed: int = 7, n: int = 200, **options: Any) -> list[list[LifecycleMessage]]:
    return list(DossierGenerator(seed, **options).lifecycle(n))


def _is_nfd_dossier(lifecycle: list[LifecycleMessage]) -> bool:
    return any(m.payload != to_nfc(m.payload) for m in lifecycle)


def _dump(lifecycles: list[list[LifecycleMessage]]) -> str:
    return json.dumps([[(m.type, m.idempotency_key, m.payload) for m in lc] for lc in lifecycles], ensure_ascii=False)


def test_same_seed_gives_the_same_messages() -> None:
    assert _dump(_lifecycles(seed=3, n=50)) == _dump(_lifecycles(seed=3, n=50))


def test_different_seeds_give_different_messages() -> None:
    assert _dump(_lifecycles(seed=3, n=20)) != _dump(_lifecycles(seed=4, n=20))


def test_the_stream_continues_across_calls() -> None:
    generator = DossierGenerator(5)
    split = list(generator.lifecycle(4)) + list(generator.lifecycle(6))
    assert _dump(split) == _dump(_lifecycles(seed=5, n=10))


def test_every_payload_validates_after_nfc_normalisation() -> None:
    for lifecycle in _lifecycles(n=300, nfd_ratio=0.5):
        for message in lifecycle:
            MODELS[message.type].model_validate(to_nfc(message.payload))


def test_nfd_share_is_present_and_normalises_to_the_nfc_dossier() -> None:
    lifecycles = _lifecycles(n=400)
    nfd = [lc for lc in lifecycles if _is_nfd_dossier(lc)]
    assert 0.1 <= len(nfd) / len(lifecycles) <= 0.3
    for lifecycle in nfd:
        upserted = lifecycle[0].payload
        assert unicodedata.is_normalized("NFD", upserted["TenTTHC"])
        assert not unicodedata.is_normalized("NFC", upserted["TenTTHC"] + upserted["TrichYeuHoSo"])
        normalised = to_nfc(upserted)
        assert all(unicodedata.is_normalized("NFC", v) for v in normalised.values() if isinstance(v, str))
        DossierUpserted.model_validate(normalised)


def test_nfd_ratio_bounds() -> None:
    assert not any(_is_nfd_dossier(lc) for lc in _lifecycles(n=50, nfd_ratio=0.0))
    assert all(_is_nfd_dossier(lc) for lc in _lifecycles(n=50, nfd_ratio=1.0))
    with pytest.raises(ValueError, match="nfd_ratio"):
        DossierGenerator(1, nfd_ratio=1.5)


def test_nfd_does_not_change_which_dossiers_are_generated() -> None:
    plain = _lifecycles(n=30, nfd_ratio=0.0)
    mixed = _lifecycles(n=30, nfd_ratio=1.0)
    for a, b in zip(plain, mixed, strict=True):
        assert [to_nfc(m.payload) for m in a] == [to_nfc(m.payload) for m in b]


def test_dossier_codes_follow_the_daily_counter() -> None:
    agency = "H15.50.05.13"
    by_day: dict[str, list[int]] = defaultdict(list)
    for lifecycle in _lifecycles(n=300, agency_code=agency):
        upserted = lifecycle[0].payload
        code = upserted["MaHoSo"]
        assert DOSSIER_CODE_PATTERN.match(code)
        match = re.fullmatch(rf"{re.escape(agency)}-(\d{{6}})-(\d{{4}})", code)
        assert match, code
        day, counter = match.groups()
        assert day == upserted["NgayTiepNhan"][2:8], "YYMMDD is the day the dossier was received"
        by_day[day].append(int(counter))
    assert len(by_day) > 1
    for counters in by_day.values():
        assert counters == list(range(1, len(counters) + 1))


def test_codes_and_idempotency_keys_are_unique() -> None:
    lifecycles = _lifecycles(n=300)
    codes = [lc[0].dossier_code for lc in lifecycles]
    keys = [m.idempotency_key for lc in lifecycles for m in lc]
    assert len(set(codes)) == len(codes)
    assert len(set(keys)) == len(keys)
    for lifecycle in lifecycles:
        for message in lifecycle:
            assert message.idempotency_key == f"{message.dossier_code}:{message.type}:{message.status}"
            assert message.idempotency_key.isascii()


def test_lifecycle_order() -> None:
    for lifecycle in _lifecycles(n=200):
        assert [m.type for m in lifecycle] == ["dossier.upserted", "dossier.progress"] * len(LIFECYCLE_STATUSES)
        upserted = [m.payload for m in lifecycle if m.type == "dossier.upserted"]
        progress = [m.payload for m in lifecycle if m.type == "dossier.progress"]
        assert [p["TrangThaiHoSo"] for p in upserted] == [1, 2, 4, 9, 10]
        assert [p["TrangThai"] for p in progress] == [1, 2, 4, 9, 10]
        assert {p["MaHoSo"] for p in upserted + progress} == {lifecycle[0].dossier_code}
        times = [p["ThoiDiemXuLy"] for p in progress]
        assert times == sorted(times)
        assert len(set(times)) == len(times)
        assert times[0] == upserted[0]["NgayTiepNhan"]
        assert "NgayTra" not in upserted[3]
        assert upserted[4]["NgayTra"] == times[4]
        assert len({p["NgayTiepNhan"] for p in upserted}) == 1, "editing a dossier never moves reception"


def test_dates_are_portal_timestamps_in_office_hours() -> None:
    for lifecycle in _lifecycles(n=100):
        for message in lifecycle:
            if message.type != "dossier.progress":
                continue
            moment = parse_portal_timestamp(message.payload["ThoiDiemXuLy"])
            assert moment.weekday() < 5
            assert "0730" <= f"{moment:%H%M}" < "1130" or "1330" <= f"{moment:%H%M}" < "1700"


def test_no_real_looking_personal_data() -> None:
    for lifecycle in _lifecycles(n=300):
        dossier = lifecycle[0].payload
        numbers = [dossier["SoGiayToChuHoSo"], dossier["MaDoiTuong"]]
        numbers += [i["SoDinhDanh"] for i in dossier["DinhDanhCHS"]]
        for number in numbers:
            assert number.startswith(FAKE_ID_PREFIX), number
        assert dossier["SoDienThoai"].startswith(FAKE_PHONE_PREFIX)
        if "Email" in dossier:
            assert dossier["Email"].endswith("@example.com")
        for document in dossier["TaiLieuNop"]:
            assert document["DuongDanTaiTepTin"].startswith("https://onestop.example/")


def test_applicants_have_vietnamese_names_and_plausible_kinds() -> None:
    lifecycles = _lifecycles(n=300)
    kinds = {lc[0].payload["LoaiDoiTuong"] for lc in lifecycles}
    assert kinds <= {1, 2}
    assert 1 in kinds
    citizens = [to_nfc(lc[0].payload) for lc in lifecycles if lc[0].payload["LoaiDoiTuong"] == 1]
    assert any(not name.isascii() for name in (c["ChuHoSo"] for c in citizens))
    for citizen in citizens:
        assert len(citizen["ChuHoSo"].split()) == 3
        assert citizen["DinhDanhCHS"][0]["LoaiDinhDanh"] == 1


def test_procedures_and_fees_come_from_the_catalogue() -> None:
    catalogue = {p.MaTTHC: p for p in load_catalogue()}
    seen: set[str] = set()
    for lifecycle in _lifecycles(n=300):
        dossier = to_nfc(lifecycle[0].payload)
        procedure = catalogue[dossier["MaTTHC"]]
        seen.add(procedure.MaTTHC)
        assert (dossier["TenTTHC"], dossier["MaLinhVuc"], dossier["TenLinhVuc"]) == (
            procedure.TenTTHC,
            procedure.MaLinhVuc,
            procedure.TenLinhVuc,
        )
        fees = dossier["DanhSachLePhi"]
        assert sum(f["Gia"] for f in fees) == procedure.LePhi
        assert all(isinstance(f["Gia"], int) for f in fees)
        assert dossier["KenhThucHien"] in (1, 2, 3)
    assert len(seen) == len(catalogue)


def test_progress_officials_fit_the_portal_limits() -> None:
    for lifecycle in _lifecycles(n=100):
        for message in lifecycle:
            if message.type == "dossier.progress":
                payload = to_nfc(message.payload)
                assert 0 < len(payload["NguoiXuLy"]) <= 50
                assert payload["ChucDanh"]
                assert payload["PhongBanXuLy"]
                assert not payload["NoiDungXuLy"].isascii()


def test_bad_arguments_are_refused_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        DossierGenerator(1).lifecycle(-1)
    with pytest.raises(ValueError, match="cannot start a dossier code"):
        DossierGenerator(1, agency_code="bad code")
