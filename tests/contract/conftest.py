"""Fixtures of the contract tests: the fake national portal served over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from adapters.national_portal import NationalPortalAdapter, create_adapter
from mocks._serve import serve_app
from mocks.national_portal import create_app

CLIENT_ID = "lgsp-hub"
CLIENT_SECRET = "contract-test-secret"


class MockPortalControl:
    """Drives the fake portal's ``/_mock`` endpoints over HTTP."""

    def __init__(self, base_url: str, http: httpx.AsyncClient) -> None:
        self.base_url = base_url
        self.http = http

    async def set_faults(self, **knobs: Any) -> dict[str, Any]:
        response = await self.http.post("/_mock/faults", json=knobs)
        response.raise_for_status()
        return dict(response.json())

    async def calls(self) -> list[dict[str, Any]]:
        response = await self.http.get("/_mock/calls")
        response.raise_for_status()
        return list(response.json())

    async def dossier(self, code: str) -> dict[str, Any]:
        response = await self.http.get(f"/_mock/dossiers/{code}")
        response.raise_for_status()
        return dict(response.json())

    async def stats(self) -> dict[str, Any]:
        response = await self.http.get("/_mock/stats")
        response.raise_for_status()
        return dict(response.json())

    async def token(self) -> str:
        response = await self.http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no call is still being answered (a test that timed out leaves one behind)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while any(call["outcome"] == "pending" for call in await self.calls()):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("The mock portal is still answering calls from an earlier test.")
            await asyncio.sleep(0.02)

    async def reset(self) -> None:
        (await self.http.delete("/_mock/faults")).raise_for_status()
        await self.wait_idle()
        (await self.http.delete("/_mock/calls")).raise_for_status()


@pytest.fixture(scope="session")
def portal_url() -> Iterator[str]:
    """One fake portal for the whole session; each test starts from a clean state."""
    with serve_app(create_app()) as base_url:
        yield base_url


@pytest.fixture
async def mock_portal(portal_url: str) -> AsyncIterator[MockPortalControl]:
    async with httpx.AsyncClient(base_url=portal_url, timeout=5) as http:
        control = MockPortalControl(portal_url, http)
        await control.reset()
        yield control
        await control.reset()


AdapterFactory = Callable[..., Awaitable[NationalPortalAdapter]]


@pytest.fixture
async def make_adapter(mock_portal: MockPortalControl) -> AsyncIterator[AdapterFactory]:
    """Build adapters pointed at the fake portal (settings overridable); all are closed afterwards."""
    adapters: list[NationalPortalAdapter] = []

    async def factory(**overrides: Any) -> NationalPortalAdapter:
        config = {
            "base_url": mock_portal.base_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "timeout_seconds": 2,
            **overrides,
        }
        adapter = create_adapter("national-portal", config)
        adapters.append(adapter)
        return adapter

    yield factory
    for adapter in adapters:
        await adapter.aclose()


@pytest.fixture
async def adapter(make_adapter: AdapterFactory) -> NationalPortalAdapter:
    return await make_adapter()
