"""Pure pieces of the identity feature: claims mapping, PKCE, return addresses, assertion keys, audit times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from adapters.vneid.assertions import AssertionSigner
from adapters.vneid.login import return_allowed
from adapters.vneid.mapping import identity_from_claims, level_of_assurance
from adapters.vneid.provider import pkce_challenge
from hub.audit_cli import parse_since
from hub.errors import ConfigurationError, PermanentDeliveryError
from hub.observability import mask_personal_data
from hub.routing import Route
from hub.settings import HubSettings

CLAIMS = {
    "sub": "vneid-1",
    "SoDinhDanh": "000190000001",
    "HoVaTen": "Nguyễn  Văn An",
    "NgayThangNamSinh": "19900215",
    "LoaiTaiKhoan": "CongDan",
    "acr": "loa2",
}


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


@pytest.mark.parametrize(
    ("value", "level"), [("loa2", 2), ("2", 2), (1, 1), ("urn:vneid:loa:1", 1), ("gold", None), (7, None), (True, None)]
)
def test_level_of_assurance(value: object, level: int | None) -> None:
    assert level_of_assurance(value) == level


def test_claims_map_to_the_canonical_identity() -> None:
    identity = identity_from_claims(CLAIMS)
    assert identity.HoVaTen == "Nguyễn Văn An"
    assert identity.LoaiTaiKhoan == "citizen"
    assert identity.loa == 2
    assert identity_from_claims({**CLAIMS, "LoaiTaiKhoan": "ToChuc"}).LoaiTaiKhoan == "organisation"
    assert identity_from_claims({**CLAIMS, "MucDo": 1}, loa_claim="MucDo").loa == 1


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"SoDinhDanh": "123"}, "SoDinhDanh"),
        ({"NgayThangNamSinh": "15/02/1990"}, "NgayThangNamSinh"),
        ({"LoaiTaiKhoan": "Robot"}, "not a known account type"),
        ({"acr": None}, "no level of assurance"),
    ],
)
def test_unusable_claims_are_refused_with_a_sentence(changes: dict[str, object], sentence: str) -> None:
    with pytest.raises(PermanentDeliveryError, match=sentence):
        identity_from_claims({**CLAIMS, **changes})


def _login_route(*urls: str) -> Route:
    return Route.model_validate(
        {
            "name": "login",
            "type": "identity.login",
            "schema": "identity.login/v1",
            "mode": "login",
            "targets": ["vneid"],
            "login": {"return_urls": list(urls)},
        }
    )


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://motcua.example.vn/dang-nhap/callback?x=1", True),
        ("https://motcua.example.vn/dang-nhap", True),
        ("https://MOTCUA.example.vn/dang-nhap/cb", True),
        ("https://motcua.example.vn/dang-nhapx/cb", False),
        ("http://motcua.example.vn/dang-nhap/cb", False),
        ("https://motcua.example.vn.evil.vn/dang-nhap/cb", False),
        ("https://user@motcua.example.vn/dang-nhap/cb", False),
        ("javascript:alert(1)", False),
        ("/dang-nhap/cb", False),
    ],
)
def test_return_addresses_must_be_under_a_listed_one(url: str, allowed: bool) -> None:
    assert return_allowed(url, _login_route("https://motcua.example.vn/dang-nhap/")) is allowed


def test_the_signing_key_comes_from_a_pem_file_and_the_previous_one_stays_published(tmp_path: Path) -> None:
    current, previous = RSAKey.generate_key(2048), RSAKey.generate_key(2048)
    (tmp_path / "now.pem").write_bytes(current.as_pem(private=True))
    (tmp_path / "old.pem").write_bytes(previous.as_pem(private=True))
    signer = AssertionSigner.from_settings(
        HubSettings(identity_signing_key_file=tmp_path / "now.pem", identity_previous_key_file=tmp_path / "old.pem")
    )
    assert not signer.ephemeral
    jwks = signer.jwks()
    assert len(jwks["keys"]) == 2
    assert all("d" not in key for key in jwks["keys"])
    token = jwt.decode(signer.sign({"sub": "x"}), KeySet.import_key_set(jwks), algorithms=["RS256"])  # type: ignore[arg-type]
    assert token.header["kid"] == jwks["keys"][0]["kid"]


def test_a_bad_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a key", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="HUB_IDENTITY_SIGNING_KEY_FILE"):
        AssertionSigner.from_settings(HubSettings(identity_signing_key_file=tmp_path / "bad.pem"))
    public = RSAKey.generate_key(2048)
    (tmp_path / "public.pem").write_bytes(public.as_pem(private=False))
    with pytest.raises(ConfigurationError, match="public key"):
        AssertionSigner.from_settings(HubSettings(identity_signing_key_file=tmp_path / "public.pem"))


def test_audit_since_forms() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parse_since("24h", now=now) == now - timedelta(hours=24)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("2026-11-01", now=now) == datetime(2026, 10, 31, 17, 0, tzinfo=UTC)  # Vietnam midnight
    assert parse_since("2026-11-01T08:00+00:00") == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="is not a time"):
        parse_since("yesterday")


def test_identity_fields_are_masked_in_logs() -> None:
    line = mask_personal_data(None, "info", {"event": "x", "SoDinhDanh": "000190000001", "HoVaTen": "Nguyễn Văn An"})
    assert line["SoDinhDanh"] == "00********01"
    assert "Văn" not in line["HoVaTen"]
