"""Population requests (validation), answers → canonical citizen, administrative codes."""

from __future__ import annotations

import unicodedata

import pytest
from pydantic import ValidationError

from adapters.population.mapping import citizen_from_wire, lookup_result, request_fields, verify_result
from adapters.population.regions import address_from_wire, province_name
from hub.envelope import Envelope
from hub.errors import UnusableReplyError
from schemas.population import CitizenName, PopulationLookup, PopulationVerify

VALID = {"MaDVC": "1.000123", "MaDonVi": "H15.50", "MaCanBo": "cb01", "SoDinhDanh": "000190000001"}


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"SoDinhDanh": "1234567890"}, "12-digit personal ID number (SoDinhDanh), got 10 character(s)"),
        ({"SoDinhDanh": "00019000000X"}, "that are not all digits"),
        ({"NgayThangNamSinh": "1990-02-15"}, "yyyyMMdd"),
        ({"NgayThangNamSinh": "19900230"}, "not a calendar date"),
        ({"NgayThangNamSinh": "29990101"}, "not a plausible date of birth"),
        ({"SoCMND": "12345"}, "9-digit old identity card number"),
        ({"MaCanBo": ""}, "at least 1 character"),
        ({"Extra": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_requests_are_refused_with_sentences(changes: dict[str, str], sentence: str) -> None:
    with pytest.raises(ValidationError, match=sentence.replace("(", r"\(").replace(")", r"\)")):
        PopulationLookup.model_validate({**VALID, **changes})


def test_verify_needs_name_and_birth_date() -> None:
    with pytest.raises(ValidationError) as caught:
        PopulationVerify.model_validate(VALID)
    assert {e["loc"][0] for e in caught.value.errors()} == {"HoVaTen", "NgayThangNamSinh"}


def test_audit_facts_name_official_purpose_and_subject() -> None:
    facts = PopulationLookup.model_validate(VALID).audit_facts()
    assert (facts.official, facts.agency, facts.purpose, facts.subject) == (
        "cb01",
        "H15.50",
        "1.000123",
        "000190000001",
    )


def test_request_fields_add_the_integration_code_and_request_id() -> None:
    envelope = Envelope(type="population.lookup", source="onestop", payload=VALID)
    fields = request_fields(envelope, integration_code="TICHHOP")
    assert fields["MaTichHop"] == "TICHHOP"
    assert fields["MaYeuCau"] == envelope.id
    assert (
        request_fields(envelope.model_copy(update={"payload": {**VALID, "MaYeuCau": "own"}}), integration_code="T")[
            "MaYeuCau"
        ]
        == "own"
    )


def test_names_split_and_normalised() -> None:
    assert CitizenName.from_full_name("Trần  Thị Bích   Ngọc") == CitizenName(
        Ho="Trần", ChuDem="Thị Bích", Ten="Ngọc", DayDu="Trần Thị Bích Ngọc"
    )
    assert CitizenName.from_full_name("Minh").Ten == "Minh"
    citizen = citizen_from_wire(
        {
            "SoDinhDanh": "000196000004",
            "NgayThangNamSinh": "19960930",
            "HoVaTen": {"Ho": unicodedata.normalize("NFD", "Hoàng"), "ChuDem": None, "Ten": "Mai"},
        }
    )
    assert citizen.HoVaTen.DayDu == "Hoàng Mai"
    assert unicodedata.is_normalized("NFC", citizen.HoVaTen.Ho)


def test_current_and_former_province_codes() -> None:
    assert province_name("01") == "Thành phố Hà Nội"
    current = address_from_wire({"MaTinhThanh": "1", "MaPhuongXa": "70", "ChiTiet": " Số 1  phố Giả Định "})
    assert current is not None
    assert (current.MaTinhThanh, current.MaPhuongXa, current.TenPhuongXa) == ("01", "00070", "Phường Hoàn Kiếm")
    assert current.ChiTiet == "Số 1 phố Giả Định"
    assert current.CanhBao == []
    former = address_from_wire({"MaTinhThanh": "35", "MaQuanHuyen": "347"})
    assert former is not None
    assert (former.MaTinhThanh, former.MaTinhThanhCu, former.MaQuanHuyen) == ("37", "35", "347")
    assert "before 1 July 2025" in former.CanhBao[0]
    wrong_ward = address_from_wire({"MaTinhThanh": "79", "MaPhuongXa": "00070"})
    assert wrong_ward is not None
    assert "is not in province 79" in wrong_ward.CanhBao[0]
    unknown = address_from_wire({"MaTinhThanh": "99"})
    assert unknown is not None
    assert unknown.TenTinhThanh is None
    assert unknown.CanhBao
    assert address_from_wire(None) is None


@pytest.mark.parametrize(("former", "current"), [("02", "08"), ("10", "15"), ("45", "44"), ("74", "79"), ("95", "96")])
def test_former_province_codes_map_to_the_province_they_joined(former: str, current: str) -> None:
    address = address_from_wire({"MaTinhThanh": former})
    assert address is not None
    assert (address.MaTinhThanh, address.MaTinhThanhCu) == (current, former)
    assert province_name(former) is None
    assert address.TenTinhThanh == province_name(current)


def test_unusable_answers_are_named() -> None:
    with pytest.raises(UnusableReplyError, match="2 citizens for one ID number"):
        lookup_result({"CongdanCollection": {"CongDan": [{}, {}]}}, "r1")
    with pytest.raises(UnusableReplyError, match="TonTai"):
        verify_result({"MaYeuCau": "r1"}, "r1")
    with pytest.raises(UnusableReplyError, match="12-digit"):
        citizen_from_wire({"SoDinhDanh": "1", "NgayThangNamSinh": "19900101", "HoVaTen": {"Ho": "A", "Ten": "B"}})
    assert lookup_result({"MaYeuCau": "r1", "CongdanCollection": None}, "x") == {
        "MaYeuCau": "r1",
        "found": False,
        "CongDan": None,
    }
