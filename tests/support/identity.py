"""Route files and mock servers for the request-reply and identity tests (population DB, VNeID)."""

from __future__ import annotations

import html
import secrets
import textwrap
import urllib.parse
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from joserfc import jwt
from joserfc.jwk import KeySet

from mocks.population import DEFAULT_INTEGRATION_CODE

#: Fake citizens of the mock population database (mocks/population/citizens.json).
CITIZEN_AN = "000190000001"  # Nguyễn Văn An, 19900215, former province code in QueQuan
CITIZEN_NGOC = "000185000002"  # Trần Thị Bích Ngọc, 19850704
CITIZEN_MAI_NFD = "000196000004"  # Hoàng Thị Mai, stored decomposed (NFD) by the mock
UNKNOWN_CITIZEN = "000199999999"


def population_request(number: str = CITIZEN_AN, **extra: str) -> dict[str, str]:
    return {"MaDVC": "1.000123", "MaDonVi": "H15.50", "MaCanBo": "canbo.test01", "SoDinhDanh": number, **extra}


def write_population_routes(
    folder: Path,
    population_url: str,
    *,
    timeout: str = "3s",
    verify_limit: str = "{rate: 0.1/s, burst: 5, per: source}",
    lookup_limit: str = "{rate: 1000/s, burst: 1000}",
) -> Path:
    """Systems onestop and ministry (keys from the harness) and the two population routes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "population.yaml").write_text(
        textwrap.dedent(
            f"""
            systems:
              - id: onestop
                key_env: HUB_SYSTEM_KEY_ONESTOP
                allowed_types: [population.lookup, population.verify]
              - id: ministry
                key_env: HUB_SYSTEM_KEY_MINISTRY
                allowed_types: [population.verify]
            targets:
              - id: population-db
                adapter: population
                config:
                  service_url: {population_url}/dancu
                  integration_code: {DEFAULT_INTEGRATION_CODE}
                  timeout_seconds: 1
            routes:
              - name: population-lookup
                type: population.lookup
                schema: population.lookup/v1
                mode: request-reply
                timeout: {timeout}
                rate_limit: {lookup_limit}
                targets: [population-db]
                retry: {{attempts: 3, backoff: [100ms, 300ms]}}
              - name: population-verify
                type: population.verify
                schema: population.verify/v1
                mode: request-reply
                timeout: {timeout}
                rate_limit: {verify_limit}
                sources: [onestop, ministry]
                targets: [population-db]
                retry: {{attempts: 3, backoff: [100ms, 300ms]}}
            """
        ),
        encoding="utf-8",
    )
    return folder


# ----------------------------------------------------------------------------- VNeID logins

VNEID_CLIENT_ID = "lgsp-hub"
VNEID_CLIENT_SECRET = "mock-vneid-secret-not-real"
SUB_AN = "vneid-7a1c0001"  # Nguyễn Văn An, level 2
SUB_NGOC = "vneid-7a1c0002"  # Trần Thị Bích Ngọc, level 1
SUB_ORGANISATION = "vneid-7a1c0003"


def write_vneid_routes(folder: Path, vneid_url: str, return_base: str) -> Path:
    """Systems onestop (may log in) and ministry, the VNeID target, a level-1 and a level-2 login route."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vneid.yaml").write_text(
        textwrap.dedent(
            f"""
            systems:
              - id: onestop
                key_env: HUB_SYSTEM_KEY_ONESTOP
                allowed_types: [identity.login]
              - id: ministry
                key_env: HUB_SYSTEM_KEY_MINISTRY
                allowed_types: [identity.login]
            targets:
              - id: vneid
                adapter: vneid
                config:
                  issuer: {vneid_url}
                  client_id: {VNEID_CLIENT_ID}
                  client_secret: {VNEID_CLIENT_SECRET}
                  timeout_seconds: 3
                  jwks_refresh_seconds: 0
            routes:
              - name: vneid-login
                type: identity.login
                schema: identity.login/v1
                mode: login
                sources: [onestop, ministry]
                targets: [vneid]
                login: {{return_urls: ["{return_base}/"], min_loa: 1, assertion_ttl: 2m}}
              - name: vneid-login-loa2
                type: identity.login
                schema: identity.login/v1
                mode: login
                sources: [onestop]
                targets: [vneid]
                login: {{return_urls: ["{return_base}/"], min_loa: 2}}
            """
        ),
        encoding="utf-8",
    )
    return folder


def write_identity_e2e_routes(folder: Path, *, vneid_url: str, population_url: str, return_base: str) -> Path:
    """Everything a one-stop system needs for identity: VNeID login (level 2) and population lookups."""
    write_vneid_routes(folder, vneid_url, return_base)
    text = (folder / "vneid.yaml").read_text(encoding="utf-8")
    (folder / "vneid.yaml").write_text(
        text.replace("allowed_types: [identity.login]\n", "allowed_types: [identity.login, population.lookup]\n", 1),
        encoding="utf-8",
    )
    (folder / "population.yaml").write_text(
        textwrap.dedent(
            f"""
            targets:
              - id: population-db
                adapter: population
                config:
                  service_url: {population_url}/dancu
                  integration_code: {DEFAULT_INTEGRATION_CODE}
                  timeout_seconds: 2
            routes:
              - name: population-lookup
                type: population.lookup
                schema: population.lookup/v1
                mode: request-reply
                timeout: 5s
                sources: [onestop]
                targets: [population-db]
            """
        ),
        encoding="utf-8",
    )
    return folder


def create_relying_party(hub_url: str, system_key: str, route: str = "vneid-login-loa2") -> FastAPI:
    """A fake one-stop system: starts logins at the hub, redeems the code, verifies the hub's assertion
    with the hub's JWKS, then looks the citizen up in the population database through the hub."""
    app = FastAPI()
    states: set[str] = set()
    auth = {"Authorization": f"Bearer {system_key}"}

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> str:
        state = secrets.token_urlsafe(8)
        states.add(state)
        return_to = str(request.base_url).rstrip("/") + "/callback"
        query = urllib.parse.urlencode({"system": "onestop", "return_to": return_to, "state": state})
        link = f"{hub_url}/v1/identity/login/{route}?{query}"
        return f'<h1>Một cửa (giả lập)</h1><a id="login" href="{link}">Đăng nhập bằng VNeID</a>'

    @app.get("/callback", response_class=HTMLResponse)
    async def callback(request: Request) -> str:
        params = request.query_params
        if params.get("state") not in states:
            return "<p id='error'>unknown state</p>"
        if "error" in params:
            return (
                f"<p id='error'>{html.escape(params['error'])}: {html.escape(params.get('error_description', ''))}</p>"
            )
        async with httpx.AsyncClient(timeout=10) as http:
            redeemed = (
                await http.post(f"{hub_url}/v1/identity/assertions", json={"code": params["code"]}, headers=auth)
            ).json()
            keys = KeySet.import_key_set((await http.get(f"{hub_url}/v1/identity/jwks.json")).json())
            token = jwt.decode(redeemed["assertion"], keys, algorithms=["RS256"])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": hub_url},
                aud={"essential": True, "value": "onestop"},
                exp={"essential": True},
            ).validate(token.claims)
            claims = token.claims
            lookup = await http.post(
                f"{hub_url}/v1/requests/population.lookup",
                json=population_request(claims["SoDinhDanh"], MaCanBo="motcua.tiepnhan01"),
                headers=auth,
            )
        home_address = lookup.json()["result"]["CongDan"]["ThuongTru"]
        ward, province = html.escape(home_address["TenPhuongXa"]), html.escape(home_address["TenTinhThanh"])
        return (
            f"<p id='welcome'>Xin chào {html.escape(claims['HoVaTen'])}</p><p id='loa'>LoA {claims['loa']}</p>"
            f"<p id='verified'>signature verified (kid {html.escape(token.header['kid'])})</p>"
            f"<p id='address'>{ward}, {province}</p>"
        )

    return app
