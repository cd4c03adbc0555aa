"""Console login through an OIDC provider (code flow with PKCE), against a real provider over sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from hub.bootstrap import build_hub
from hub.console import include_console
from hub.errors import ConfigurationError
from hub.settings import HubSettings
from mocks._serve import serve_app
from tests.support.harness import RunningHub, running_hub
from tests.support.oidc_provider import ProviderState, create_provider_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[str, ProviderState]]:
    state = ProviderState()
    app, where = create_provider_app(state)
    with serve_app(app) as url:
        where["issuer"] = url
        yield url, state


@pytest.fixture
async def oidc_hub(
    tmp_path: Path, routes_dir: Path, portal_url: str, provider: tuple[str, ProviderState]
) -> AsyncIterator[RunningHub]:
    issuer, state = provider
    state.next_user = {"sub": "official-1"}
    state.sign_with_unpublished_key = False
    state.audience = None
    async with running_hub(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        routes_dir=routes_dir,
        portal_url=portal_url,
        workers=False,
        console_oidc_issuer=issuer,
        console_oidc_client_id=state.client_id,
        console_oidc_client_secret=state.client_secret,
        console_oidc_roles={"official-1": "operator", "official-2": "viewer"},
        console_oidc_label="SSO thử nghiệm",
        console_secret_key="test-console-signing-key-not-a-secret-0123456789",
    ) as running:
        yield running


async def _oidc_login(hub: RunningHub, client: httpx.AsyncClient, next_path: str = "/console") -> httpx.Response:
    """Follow the login: hub → provider's authorize → hub's callback; return the callback's answer."""
    start = await client.get(f"{hub.url}/console/oidc/start", params={"next": next_path})
    assert start.status_code == 303, start.text
    authorize = await client.get(start.headers["location"])
    assert authorize.status_code == 302, authorize.text
    return await client.get(authorize.headers["location"])


async def test_a_mapped_official_logs_in_with_the_role_the_hub_gives(oidc_hub: RunningHub) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        login = await client.get(f"{oidc_hub.url}/console/login")
        assert "SSO thử nghiệm" in login.text
        assert 'name="password"' not in login.text, "no local account is configured"
        callback = await _oidc_login(oidc_hub, client, "/console/audit")
        assert callback.status_code == 303, callback.text
        assert callback.headers["location"] == "/console/audit"
        audit = await client.get(f"{oidc_hub.url}/console/audit")
        assert audit.status_code == 200
        assert 'data-role="operator">official-1' in audit.text


async def test_an_official_the_hub_does_not_know_is_refused(
    oidc_hub: RunningHub, provider: tuple[str, ProviderState]
) -> None:
    provider[1].next_user = {"sub": "stranger"}
    async with httpx.AsyncClient(timeout=30) as client:
        callback = await _oidc_login(oidc_hub, client)
        assert callback.status_code == 403
        assert "HUB_CONSOLE_OIDC_ROLES" in callback.text
        assert (await client.get(f"{oidc_hub.url}/console")).status_code == 303


async def test_a_forged_or_misaddressed_id_token_is_refused(
    oidc_hub: RunningHub, provider: tuple[str, ProviderState]
) -> None:
    provider[1].sign_with_unpublished_key = True
    async with httpx.AsyncClient(timeout=30) as client:
        forged = await _oidc_login(oidc_hub, client)
        assert forged.status_code == 401
        assert "ID token from the login provider was refused" in forged.text
    provider[1].sign_with_unpublished_key = False
    provider[1].audience = "another-client"
    async with httpx.AsyncClient(timeout=30) as client:
        misaddressed = await _oidc_login(oidc_hub, client)
        assert misaddressed.status_code == 401
        assert "audience" in misaddressed.text.lower()
        assert (await client.get(f"{oidc_hub.url}/console")).status_code == 303


async def test_a_callback_that_does_not_answer_this_browsers_login_is_refused(oidc_hub: RunningHub) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        start = await client.get(f"{oidc_hub.url}/console/oidc/start")
        authorize = await client.get(start.headers["location"])
        callback_url = httpx.URL(authorize.headers["location"])
        other_state = callback_url.copy_merge_params({"state": "not-the-state"})
        refused = await client.get(other_state)
        assert refused.status_code == 400
        assert "start it again" in refused.text
    async with httpx.AsyncClient(timeout=30) as stranger:  # no cookie from /oidc/start
        assert (await stranger.get(callback_url)).status_code == 400


async def test_oidc_logins_need_the_public_url_except_in_the_demo(
    tmp_path: Path, routes_dir: Path, provider: tuple[str, ProviderState]
) -> None:
    """Issue #17: without HUB_CONSOLE_PUBLIC_URL the redirect back from the provider would be built from the
    Host header a visitor sends; the console refuses to start, except under ``hub run --demo``."""
    issuer, state = provider
    common: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        "routes_dir": routes_dir,
        "console_oidc_issuer": issuer,
        "console_oidc_client_id": state.client_id,
        "console_public_url": None,
    }
    production = build_hub(HubSettings(**common))
    try:
        with pytest.raises(ConfigurationError, match="HUB_CONSOLE_PUBLIC_URL is not"):
            include_console(FastAPI(), production)
    finally:
        await production.aclose()
    demo = build_hub(HubSettings(**common, demo=True))
    try:
        app = FastAPI()
        include_console(app, demo)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub.demo.test") as client:
            start = await client.get("/console/oidc/start")
        assert start.status_code == 303, start.text
        query = dict(parse_qsl(urlsplit(start.headers["location"]).query))
        assert query["redirect_uri"] == "http://hub.demo.test/console/oidc/callback", "the demo keeps the Host"
    finally:
        await demo.aclose()
