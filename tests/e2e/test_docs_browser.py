"""/docs (Swagger UI) and /redoc render in a browser that can reach nothing but the hub, as on a provincial
network without internet (Debian's Chromium through Playwright, headless)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Route, expect

from tests.support.harness import RunningHub, running_hub, write_routes

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def docs_hub(tmp_path_factory: pytest.TempPathFactory, portal_url: str) -> AsyncIterator[RunningHub]:
    folder = tmp_path_factory.mktemp("docs-browser")
    async with running_hub(
        database_url=f"sqlite+aiosqlite:///{folder}/hub.db",
        routes_dir=write_routes(folder / "routes", portal_url),
        portal_url=portal_url,
        workers=False,
    ) as running:
        yield running


@pytest.fixture
async def offline_page(browser: Browser) -> AsyncIterator[tuple[Page, list[str]]]:
    """A page whose requests to any host but 127.0.0.1 are aborted; the list has those it tried and the
    page's script errors."""
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    blocked: list[str] = []

    async def only_the_hub(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1" or route.request.url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_the_hub)
    page = await context.new_page()
    page.on("pageerror", lambda error: blocked.append(f"script error: {error}"))
    yield page, blocked
    await context.close()


async def test_swagger_ui_renders_the_operations_offline(
    docs_hub: RunningHub, offline_page: tuple[Page, list[str]], tmp_path: Path
) -> None:
    page, blocked = offline_page
    await page.goto(f"{docs_hub.url}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("LGSP hub ingress")
    send = page.locator(".opblock.opblock-post", has_text="/v1/messages").first
    await expect(send).to_be_visible()
    assert await page.locator(".opblock").count() >= 5
    await send.locator(".opblock-summary").click()  # opens: the schema and "Try it out" render too
    await expect(send.locator(".try-out__btn")).to_be_visible()
    await page.screenshot(path=str(tmp_path / "docs-swagger-ui.png"), full_page=False)
    health = page.locator(".opblock.opblock-get", has_text="/healthz").first  # "Try it out" calls the hub
    await health.locator(".opblock-summary").click()
    await health.locator(".try-out__btn").click()
    await health.locator(".execute").click()
    await expect(health.locator(".responses-wrapper .live-responses-table")).to_contain_text('"status": "ok"')
    assert blocked == []


async def test_redoc_renders_the_operations_offline(
    docs_hub: RunningHub, offline_page: tuple[Page, list[str]], tmp_path: Path
) -> None:
    page, blocked = offline_page
    await page.goto(f"{docs_hub.url}/redoc")
    await expect(page.locator("h1")).to_contain_text("LGSP hub ingress")
    await expect(page.locator("h2", has_text="Post Message").first).to_be_visible()
    await expect(page.get_by_text("/v1/messages", exact=True).first).to_be_attached()
    await page.screenshot(path=str(tmp_path / "docs-redoc.png"), full_page=False)
    assert blocked == []
