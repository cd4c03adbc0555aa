"""Envelope encoding, NFC normalisation and the published JSON Schemas."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from hub.envelope import Envelope, decode_envelope, encode_envelope, nfc_json_text, normalize_text
from schemas import SCHEMAS, DossierProgress, DossierUpserted, json_schemas
from tests.support.payloads import dossier, step

ROOT = Path(__file__).resolve().parents[2]


def test_envelopes_survive_the_broker_round_trip() -> None:
    envelope = Envelope(type="dossier.upserted", source="onestop", dossier_code="X-261126-0001", payload={"a": "Ễ"})
    assert decode_envelope(encode_envelope(envelope)) == envelope


@pytest.mark.parametrize("body", [b"{not json", b'{"type": "x"}', b"\xff\xfe"])
def test_a_body_that_is_not_an_envelope_is_a_sentence(body: bytes) -> None:
    with pytest.raises(ValueError, match="broker message"):
        decode_envelope(body)


def test_text_is_normalised_to_nfc_recursively() -> None:
    nfd = unicodedata.normalize("NFD", "Phường Hàng Bạc")
    assert nfd != "Phường Hàng Bạc"
    normalised = normalize_text({"a": [nfd, {"b": nfd}], nfd: 1})
    assert normalised == {"a": ["Phường Hàng Bạc", {"b": "Phường Hàng Bạc"}], "Phường Hàng Bạc": 1}


def test_normalising_the_json_text_gives_the_strings_normalising_each_value_gives() -> None:
    nfd = unicodedata.normalize("NFD", "Nguyễn Văn Ân, Phường Hàng Bạc")
    text = orjson.dumps({"type": "dossier.upserted", nfd: [nfd, {"k": nfd, "n": 1.5e3, "t": True}]}).decode()
    assert orjson.loads(nfc_json_text(text)) == normalize_text(orjson.loads(text))
    assert nfd not in nfc_json_text(text)


def test_valid_payloads_pass() -> None:
    DossierUpserted.model_validate(dossier(status=10))
    DossierProgress.model_validate(step("H15.50.05.13-261008-0975"))


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"MaHoSo": "H15-2610-1"}, "agency code"),
        ({"NgayTiepNhan": "20261332083000"}, "not a real date"),
        ({"NgayHenTra": "20261101000000"}, "must not be before NgayTiepNhan"),
        ({"TrangThaiHoSo": 10}, r"NgayTra \(result date\) is required"),
        ({"KenhThucHien": 4}, "KenhThucHien"),
        ({"SoDienThoai": "call me"}, "phone number"),
        ({"DinhDanhCHS": [{"LoaiDinhDanh": 1, "SoDinhDanh": "123456789"}]}, "must be 12 digits"),
        ({"DanhSachLePhi": [{"TenPhiLePhi": "Lệ phí", "Gia": 1.5}]}, "Gia"),
    ],
)
def test_invalid_payloads_say_what_is_wrong(fields: dict[str, object], problem: str) -> None:
    payload = dossier()
    payload.update(fields)
    with pytest.raises(ValidationError, match=problem):
        DossierUpserted.model_validate(payload)


def test_the_published_json_schemas_are_up_to_date() -> None:
    """schemas/json/*.schema.json is the contract ministries read; `hub schemas export` regenerates it."""
    for name, schema in json_schemas().items():
        path = ROOT / "schemas" / "json" / (name.replace("/", ".") + ".schema.json")
        assert path.exists(), f"run `hub schemas export` to write {path.name}"
        assert json.loads(path.read_text(encoding="utf-8")) == schema, f"{path.name} is stale: run `hub schemas export`"
    assert set(SCHEMAS) == set(json_schemas())
