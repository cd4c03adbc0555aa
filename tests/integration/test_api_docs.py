"""/docs and /redoc work on a network without internet: every script, style sheet and icon they use is served
by the hub itself (from the fastapi-offline package), none from a CDN."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import fastapi_offline
import pytest

from tests.support.harness import RunningHub, running_hub, write_routes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def docs_hub(tmp_path_factory: pytest.TempPathFactory, portal_url: str) -> AsyncIterator[RunningHub]:
    folder = tmp_path_factory.mktemp("api-docs")
    async with running_hub(
        database_url=f"sqlite+aiosqlite:///{folder}/hub.db",
        routes_dir=write_routes(folder / "routes", portal_url),
        portal_url=portal_url,
        workers=False,
    ) as running:
        yield running


class _References(HTMLParser):
    """The addresses a page loads: ``src`` and ``href`` of its elements, and ReDoc's ``spec-url``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href", "spec-url"} and value]


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize(
    ("page", "expected_assets"),
    [
        ("/docs", {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/docs/assets/favicon.png"}),
        ("/redoc", {"/docs/assets/redoc.standalone.js", "/docs/assets/favicon.png", "/openapi.json"}),
    ],
)
async def test_the_api_docs_load_everything_from_the_hub(
    docs_hub: RunningHub, page: str, expected_assets: set[str]
) -> None:
    response = await docs_hub.client.get(f"{docs_hub.url}{page}")
    assert response.status_code == 200, response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]
    html = response.text
    external = [url for url in re.findall(r"(?:https?:)?//[^\s'\"<>]+", html) if not url.startswith(docs_hub.url)]
    assert external == [], f"{page} refers to other hosts: {external}"
    references = set(_references(html))
    if page == "/docs":
        assert "url: '/openapi.json'" in html
        assert '"validatorUrl": null' in html  # no badge fetched from validator.swagger.io
        references.add("/openapi.json")
    assert references == expected_assets | {"/openapi.json"}
    for url in sorted(references):
        asset = await docs_hub.client.get(f"{docs_hub.url}{url}")
        assert asset.status_code == 200, f"{url} of {page}: {asset.status_code}"
        assert len(asset.content) > 1000, f"{url} of {page} is nearly empty"


async def test_the_docs_assets_are_the_packaged_swagger_ui_and_redoc(docs_hub: RunningHub) -> None:
    shipped = Path(fastapi_offline.__file__).parent / "static"
    for name, content_type in [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "javascript"),
    ]:
        asset = await docs_hub.client.get(f"{docs_hub.url}/docs/assets/{name}")
        assert asset.status_code == 200
        assert content_type in asset.headers["content-type"]
        assert asset.content == (shipped / name).read_bytes()
