"""VNeID logins through the hub against the mock OIDC provider, over real sockets (no browser here:
the browser's redirects are followed step by step; tests/e2e drives a real one)."""

from __future__ import annotations

import html
import os
import re
import unicodedata
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from adapters.vneid.login import LOGINS_PER_ADDRESS_BURST
from adapters.vneid.sessions import LoginSessions
from adapters.vneid.tables import LoginSessionRow
from hub.audit import AuditLog
from hub.bootstrap import build_hub
from hub.errors import ConfigurationError
from hub.ingress import create_ingress_app
from hub.settings import HubSettings
from mocks._serve import serve_app
from mocks.vneid import create_app as create_vneid_app
from tests.support.harness import MINISTRY_KEY, ONESTOP_KEY, RunningHub, running_hub
from tests.support.identity import (
    SUB_AN,
    SUB_NGOC,
    SUB_ORGANISATION,
    VNEID_CLIENT_ID,
    VNEID_CLIENT_SECRET,
    write_vneid_routes,
)
from tests.support.streaming import stream_large_body

pytestmark = pytest.mark.integration

RETURN_BASE = "http://127.0.0.1:9/onestop"  # never fetched: the tests read the redirect
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


@pytest.fixture(scope="module")
def vneid_url() -> Iterator[str]:
    with serve_app(create_vneid_app(client_id=VNEID_CLIENT_ID, client_secret=VNEID_CLIENT_SECRET)) as url:
        yield url


@pytest.fixture
def vneid(vneid_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=vneid_url, timeout=10) as client:
        client.delete("/_mock/faults")
        client.delete("/_mock/calls")
        yield client
        client.delete("/_mock/faults")


@pytest.fixture(scope="module")
async def id_hub(vneid_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningHub]:
    os.environ.setdefault("HUB_SYSTEM_KEY_ONESTOP", ONESTOP_KEY)
    os.environ.setdefault("HUB_SYSTEM_KEY_MINISTRY", MINISTRY_KEY)
    folder = tmp_path_factory.mktemp("vneid")
    routes = write_vneid_routes(folder / "routes", vneid_url, RETURN_BASE)
    async with running_hub(
        database_url=f"sqlite+aiosqlite:///{folder}/hub.db", routes_dir=routes, portal_url=vneid_url
    ) as running:
        yield running


class Browser:
    """Follows the login's redirects like a browser would (cookies kept), choosing an account at the mock."""

    def __init__(self) -> None:
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=10)
        self.authorize_url = ""

    async def start(self, hub: RunningHub, route: str = "vneid-login", **params: str) -> httpx.Response:
        query = {"system": "onestop", "return_to": f"{RETURN_BASE}/callback", "state": "rp-state-42", **params}
        return await self.http.get(f"{hub.url}/v1/identity/login/{route}", params=query)

    async def login(
        self, hub: RunningHub, sub: str = SUB_AN, route: str = "vneid-login", *, deny: bool = False
    ) -> dict[str, str]:
        started = await self.start(hub, route)
        assert started.status_code == 302, started.text
        self.authorize_url = started.headers["location"]
        page = await self.http.get(self.authorize_url)
        assert page.status_code == 200, page.text
        form = {name: html.unescape(value) for name, value in _HIDDEN.findall(page.text)}
        form.update({"deny": "1"} if deny else {"sub": sub})
        provider_base = self.authorize_url.split("/authorize")[0]
        chosen = await self.http.post(f"{provider_base}/authorize", data=form)
        assert chosen.status_code == 302
        back = await self.http.get(chosen.headers["location"])
        assert back.status_code == 302, back.text
        location = back.headers["location"]
        assert location.startswith(f"{RETURN_BASE}/callback?")
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))

    async def aclose(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    b = Browser()
    yield b
    await b.aclose()


async def _redeem(hub: RunningHub, code: str, key: str = ONESTOP_KEY) -> httpx.Response:
    return await hub.client.post(
        f"{hub.url}/v1/identity/assertions", json={"code": code}, headers={"Authorization": f"Bearer {key}"}
    )


async def _verify(hub: RunningHub, assertion: str) -> dict[str, Any]:
    """What the one-stop system does: verify the hub's signature with the hub's published JWKS."""
    keys = KeySet.import_key_set((await hub.client.get(f"{hub.url}/v1/identity/jwks.json")).json())
    token = jwt.decode(assertion, keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": hub.url}, aud={"essential": True, "value": "onestop"}
    ).validate(token.claims)
    return dict(token.claims)


async def _audits(hub: RunningHub) -> list[dict[str, Any]]:
    entries = await AuditLog(hub.hub.store.engine).entries(since=datetime.now(UTC) - timedelta(minutes=10))
    return [e.as_json() for e in entries if e.kind == "identity.login"]


async def test_login_ends_with_a_signed_assertion_the_onestop_system_verifies(
    id_hub: RunningHub, vneid: httpx.Client, browser: Browser
) -> None:
    answer = await browser.login(id_hub, SUB_AN)
    assert answer["state"] == "rp-state-42"
    authorize = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(browser.authorize_url).query))
    assert authorize["code_challenge_method"] == "S256"
    assert "code_verifier" not in authorize
    assert authorize["nonce"]
    redeemed = await _redeem(id_hub, answer["code"])
    assert redeemed.status_code == 200, redeemed.text
    body = redeemed.json()
    claims = await _verify(id_hub, body["assertion"])
    assert claims["sub"] == claims["SoDinhDanh"] == "000190000001"
    assert claims["HoVaTen"] == unicodedata.normalize("NFC", "Nguyễn Văn An")
    assert claims["NgayThangNamSinh"] == "19900215"
    assert claims["LoaiTaiKhoan"] == "citizen"
    assert claims["loa"] == 2
    assert claims["idp"] == "vneid"
    assert claims["idp_sub"] == SUB_AN
    assert claims["exp"] - claims["iat"] == body["expires_in"] == 120
    assert body["identity"]["SoDinhDanh"] == "000190000001"
    record = next(r for r in await _audits(id_hub) if r["outcome"] == "ok")
    assert record["system"] == "onestop"
    assert record["subject"] == "00********01"


async def test_a_code_is_redeemed_once_and_only_by_its_system(
    id_hub: RunningHub, vneid: httpx.Client, browser: Browser
) -> None:
    code = (await browser.login(id_hub, SUB_ORGANISATION))["code"]
    other = await _redeem(id_hub, code, key=MINISTRY_KEY)
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_grant"
    first = await _redeem(id_hub, code)
    assert first.status_code == 200
    assert first.json()["identity"]["LoaiTaiKhoan"] == "organisation"
    again = await _redeem(id_hub, code)
    assert again.status_code == 400
    assert "already used" in again.json()["detail"]


async def test_a_level_1_account_is_refused_where_level_2_is_required(
    id_hub: RunningHub, vneid: httpx.Client, browser: Browser
) -> None:
    answer = await browser.login(id_hub, SUB_NGOC, route="vneid-login-loa2")
    assert answer["error"] == "insufficient_loa"
    assert "level 2" in answer["error_description"]
    assert "code" not in answer
    assert any(r["outcome"] == "refused_loa" and r["subject"] == "00********02" for r in await _audits(id_hub))


@pytest.mark.parametrize(
    ("knob", "sentence"),
    [
        ("forged_next", "bad signature"),
        ("expired_next", "expired"),
        ("wrong_nonce_next", "not for this login"),
        ("wrong_audience_next", "not for this login"),
        ("wrong_issuer_next", "not for this login"),
        ("userinfo_other_sub_next", "another subject"),
    ],
)
async def test_tokens_that_do_not_verify_end_the_login(
    id_hub: RunningHub, vneid: httpx.Client, browser: Browser, knob: str, sentence: str
) -> None:
    vneid.post("/_mock/faults", json={knob: 1})
    answer = await browser.login(id_hub, SUB_AN)
    assert answer["error"] == "login_failed"
    assert sentence in answer["error_description"]
    assert "code" not in answer


async def test_a_rotated_provider_key_is_fetched_again(
    id_hub: RunningHub, vneid: httpx.Client, browser: Browser
) -> None:
    assert "code" in await browser.login(id_hub, SUB_AN)  # the hub has cached the JWKS
    vneid.post("/_mock/rotate", json={"keep_old": False})
    answer = await browser.login(id_hub, SUB_AN)
    assert "code" in answer, answer
    assert (await _redeem(id_hub, answer["code"])).status_code == 200


async def test_provider_outage_and_cancel_are_sent_back_as_errors(
    id_hub: RunningHub, vneid: httpx.Client, browser: Browser
) -> None:
    vneid.post("/_mock/faults", json={"token_error_next": 1, "token_error_status": 503})
    assert (await browser.login(id_hub, SUB_AN))["error"] == "temporarily_unavailable"
    cancelled = await browser.login(id_hub, SUB_AN, deny=True)
    assert cancelled == {
        "error": "access_denied",
        "error_description": "The login was cancelled at the provider.",
        "state": "rp-state-42",
    }


@pytest.mark.parametrize(
    "return_to",
    [
        "http://evil.example/onestop/callback",
        f"{RETURN_BASE}evil/callback",
        "javascript:alert(1)",
        "http://127.0.0.1:9@evil.example/onestop/",
    ],
)
async def test_the_hub_never_redirects_to_an_unlisted_return_address(
    id_hub: RunningHub, browser: Browser, return_to: str
) -> None:
    response = await browser.start(id_hub, return_to=return_to)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "return address" in response.text


async def test_a_callback_in_another_browser_is_refused(id_hub: RunningHub, vneid: httpx.Client) -> None:
    first, second = Browser(), Browser()
    try:
        started = await first.start(id_hub)
        page = await first.http.get(started.headers["location"])
        form = {name: html.unescape(value) for name, value in _HIDDEN.findall(page.text)} | {"sub": SUB_AN}
        chosen = await first.http.post(started.headers["location"].split("?")[0], data=form)
        stolen = await second.http.get(chosen.headers["location"])  # the callback URL replayed elsewhere
        assert stolen.status_code == 400
        assert "another browser" in stolen.text
        honest = await first.http.get(chosen.headers["location"])
        assert honest.status_code == 302
        assert "code=" in honest.headers["location"]
        replayed = await first.http.get(chosen.headers["location"])
        assert replayed.status_code == 400
    finally:
        await first.aclose()
        await second.aclose()


async def test_unknown_route_system_and_jwks(id_hub: RunningHub, browser: Browser) -> None:
    assert (await browser.start(id_hub, route="nope")).status_code == 404
    assert (await browser.start(id_hub, system="stranger")).status_code == 403
    assert (await browser.start(id_hub, route="vneid-login-loa2", system="ministry")).status_code == 403
    keys = (await id_hub.client.get(f"{id_hub.url}/v1/identity/jwks.json")).json()["keys"]
    assert keys
    assert all("d" not in key for key in keys)


# --------------------------------------------------------------------------- the edge (issue #17)


async def test_a_large_assertion_request_is_refused_before_it_is_read(id_hub: RunningHub) -> None:
    upload = await stream_large_body(
        f"{id_hub.url}/v1/identity/assertions",
        {"Content-Type": "application/json", "Authorization": f"Bearer {ONESTOP_KEY}"},
    )
    assert upload.status == 413, upload.head  # the endpoint had no limit at all before issue #17
    assert upload.closed
    assert upload.sent < 8 * 1024 * 1024  # of 64 MiB
    nul = await id_hub.client.post(
        f"{id_hub.url}/v1/identity/assertions",
        json={"code": "a\u0000b"},
        headers={"Authorization": f"Bearer {ONESTOP_KEY}"},
    )
    assert nul.status_code == 422
    assert "control character (U+0000)" in nul.json()["detail"]


async def test_a_control_character_in_a_login_link_is_refused_at_the_edge(id_hub: RunningHub) -> None:
    browser = Browser()
    try:
        answer = await browser.start(id_hub, state="rp\u0000state")
    finally:
        await browser.aclose()
    assert answer.status_code == 400
    assert answer.json()["detail"] == "The query string holds a control character (U+0000); remove it."


async def test_logins_are_rate_limited_per_address_and_bounded(vneid_url: str, tmp_path: Path) -> None:
    """Each GET /v1/identity/login/… stores a row, and anyone may send one: the route file's rate limit
    (none on vneid-login) is not enough."""
    routes = write_vneid_routes(tmp_path / "routes", vneid_url, RETURN_BASE)
    async with running_hub(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db", routes_dir=routes, portal_url=vneid_url
    ) as hub:
        browser = Browser()
        try:
            statuses = [(await browser.start(hub)).status_code for _ in range(LOGINS_PER_ADDRESS_BURST + 10)]
            throttled = await browser.start(hub)
        finally:
            await browser.aclose()
        assert statuses.count(302) <= LOGINS_PER_ADDRESS_BURST + 2  # + what refilled meanwhile
        assert 429 in statuses
        assert throttled.status_code == 429
        assert int(throttled.headers["Retry-After"]) >= 1
        logins = LoginSessions(hub.hub.store.engine)
        now = datetime.now(UTC)

        def row(n: int) -> LoginSessionRow:
            return LoginSessionRow(
                id=f"bound-{n}", route="vneid-login", system="onestop", return_to=RETURN_BASE, browser_hash="0" * 64,
                nonce="n", code_verifier="v", created_at=now, expires_at=now + timedelta(minutes=10),
            )  # fmt: skip

        in_progress = statuses.count(302)
        assert await logins.start(row(1), at_most=in_progress + 1)
        assert not await logins.start(row(2), at_most=in_progress + 1)


# --------------------------------------------------------------------------- the public address (issue #17)


async def test_login_routes_need_the_public_url_except_in_the_demo(vneid_url: str, tmp_path: Path) -> None:
    """Without HUB_IDENTITY_PUBLIC_URL the redirect to VNeID and the assertions' issuer would follow the Host
    header a browser sends: the ingress refuses to start, except under ``hub run --demo``."""
    routes = write_vneid_routes(tmp_path / "routes", vneid_url, RETURN_BASE)
    common: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        "routes_dir": routes,
        "allow_sample_secrets": True,
        "identity_public_url": None,
    }
    production = build_hub(HubSettings(**common))
    try:
        with pytest.raises(ConfigurationError, match=r"login routes \(vneid-login.*HUB_IDENTITY_PUBLIC_URL is not set"):
            create_ingress_app(production)
    finally:
        await production.aclose()
    demo = build_hub(HubSettings(**common, demo=True))
    try:
        await demo.store.migrate()
        app = create_ingress_app(demo)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub.demo.test") as client:
            query = {"system": "onestop", "return_to": f"{RETURN_BASE}/callback", "state": "rp-state-42"}
            started = await client.get("/v1/identity/login/vneid-login", params=query)
        assert started.status_code == 302, started.text
        redirect_uri = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(started.headers["location"]).query))
        assert redirect_uri["redirect_uri"] == "http://hub.demo.test/v1/identity/callback", "the demo keeps the Host"
    finally:
        await demo.aclose()
