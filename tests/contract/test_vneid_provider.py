"""Contract of the VNeID adapter against the mock OIDC provider: the flow, token checks, failures translated."""

from __future__ import annotations

import html
import re
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from adapters.vneid import VNeIDProvider, create_adapter
from hub.adapter import IdentityProvider, LoginRequest
from hub.errors import PermanentDeliveryError, TransientDeliveryError
from mocks._serve import serve_app
from mocks.vneid import create_app
from tests.support.harness import free_port
from tests.support.identity import SUB_AN, SUB_NGOC, VNEID_CLIENT_ID, VNEID_CLIENT_SECRET

REDIRECT = "http://127.0.0.1:9/v1/identity/callback"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with serve_app(create_app(client_id=VNEID_CLIENT_ID, client_secret=VNEID_CLIENT_SECRET)) as url:
        yield url


@pytest.fixture
def knobs(issuer: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=issuer, timeout=5) as client:
        client.delete("/_mock/faults")
        yield client
        client.delete("/_mock/faults")


@pytest.fixture
async def provider(issuer: str) -> AsyncIterator[VNeIDProvider]:
    built = create_adapter(
        "vneid",
        {
            "issuer": issuer,
            "client_id": VNEID_CLIENT_ID,
            "client_secret": VNEID_CLIENT_SECRET,
            "jwks_refresh_seconds": 0,
        },
    )
    yield built
    await built.aclose()


def _login() -> LoginRequest:
    return LoginRequest(
        state=secrets.token_urlsafe(16),
        nonce=secrets.token_urlsafe(16),
        code_verifier=secrets.token_urlsafe(48),
        redirect_uri=REDIRECT,
    )


async def _code(provider: VNeIDProvider, login: LoginRequest, sub: str = SUB_AN) -> str:
    """What the browser does at the provider: open the page, choose an account, follow back."""
    url = await provider.authorization_url(login)
    async with httpx.AsyncClient(follow_redirects=False, timeout=5) as browser:
        page = await browser.get(url)
        form = {k: html.unescape(v) for k, v in _HIDDEN.findall(page.text)} | {"sub": sub}
        chosen = await browser.post(url.split("?")[0], data=form)
    back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(chosen.headers["location"]).query))
    assert back["state"] == login.state
    return back["code"]


async def test_it_is_an_identity_provider(provider: VNeIDProvider) -> None:
    assert isinstance(provider, IdentityProvider)
    await provider.check()


async def test_authorization_url_carries_pkce_and_nonce_not_the_verifier(provider: VNeIDProvider) -> None:
    login = _login()
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(await provider.authorization_url(login)).query))
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert query["nonce"] == login.nonce
    assert query["redirect_uri"] == REDIRECT
    assert "openid" in query["scope"].split()
    assert login.code_verifier not in query.values()


async def test_the_flow_returns_the_canonical_identity(provider: VNeIDProvider, knobs: httpx.Client) -> None:
    login = _login()
    identity = await provider.complete(await _code(provider, login, SUB_NGOC), login)
    assert identity == {
        "SoDinhDanh": "000185000002",
        "HoVaTen": "Trần Thị Bích Ngọc",
        "NgayThangNamSinh": "19850704",
        "LoaiTaiKhoan": "citizen",
        "loa": 1,
        "provider": "vneid",
        "sub": SUB_NGOC,
    }


@pytest.mark.parametrize(
    ("knob", "sentence"),
    [
        ("forged_next", "bad signature"),
        ("expired_next", "expired"),
        ("wrong_nonce_next", "not for this login"),
        ("wrong_audience_next", "not for this login"),
        ("userinfo_other_sub_next", "another subject"),
    ],
)
async def test_tokens_that_do_not_verify_are_permanent(
    provider: VNeIDProvider, knobs: httpx.Client, knob: str, sentence: str
) -> None:
    login = _login()
    code = await _code(provider, login)
    knobs.post("/_mock/faults", json={knob: 1})
    with pytest.raises(PermanentDeliveryError, match=sentence):
        await provider.complete(code, login)


async def test_a_wrong_verifier_or_a_reused_code_is_refused(provider: VNeIDProvider, knobs: httpx.Client) -> None:
    login = _login()
    code = await _code(provider, login)
    other = LoginRequest(login.state, login.nonce, secrets.token_urlsafe(48), login.redirect_uri)
    with pytest.raises(PermanentDeliveryError, match="invalid_grant: PKCE verification failed"):
        await provider.complete(code, other)
    with pytest.raises(PermanentDeliveryError, match="invalid_grant"):
        await provider.complete(code, login)  # the code was spent by the failed attempt


async def test_key_rotation_is_followed(provider: VNeIDProvider, knobs: httpx.Client) -> None:
    login = _login()
    await provider.complete(await _code(provider, login), login)
    knobs.post("/_mock/rotate", json={})
    login = _login()
    assert (await provider.complete(await _code(provider, login), login))["loa"] == 2


async def test_outages_are_transient_and_bad_credentials_permanent(issuer: str, knobs: httpx.Client) -> None:
    provider = create_adapter("vneid", {"issuer": issuer, "client_id": VNEID_CLIENT_ID, "client_secret": "wrong"})
    try:
        login = _login()
        code = await _code(provider, login)
        knobs.post("/_mock/faults", json={"token_error_next": 1, "token_error_status": 502})
        with pytest.raises(TransientDeliveryError, match="HTTP 502"):
            await provider.complete(code, login)
        with pytest.raises(PermanentDeliveryError, match="invalid_client"):
            await provider.complete(code, login)
    finally:
        await provider.aclose()
    down = create_adapter(
        "vneid", {"issuer": f"http://127.0.0.1:{free_port()}", "client_id": "x", "timeout_seconds": 1}
    )
    try:
        with pytest.raises(TransientDeliveryError, match="Could not connect to VNeID"):
            await down.check()
    finally:
        await down.aclose()


async def test_an_issuer_that_does_not_match_discovery_is_refused() -> None:
    with serve_app(create_app(issuer="https://sso.example.vn/realms/vneid")) as url:
        provider = create_adapter("vneid", {"issuer": url, "client_id": VNEID_CLIENT_ID})
        try:
            with pytest.raises(PermanentDeliveryError, match="names issuer 'https://sso\\.example\\.vn/realms/vneid'"):
                await provider.check()
        finally:
            await provider.aclose()
