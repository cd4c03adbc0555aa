"""/docs and /redoc work on a network without internet: every script, style sheet and icon they use is served
by the hub itself (from the fastapi-offline package), none from a CDN."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import fastapi_offline
import httpx
import pytest

from hub.ingress import create_ingress_app
from tests.support.harness import ONESTOP_KEY, RunningHub, running_hub, write_routes
from tests.support.payloads import dossier

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


DOCS_PASSWORD = "docs-password-for-this-test-5d1c"
METRICS_TOKEN = "metrics-token-for-this-test-93fa"


@pytest.fixture(scope="module")
async def locked_hub(tmp_path_factory: pytest.TempPathFactory, portal_url: str) -> AsyncIterator[RunningHub]:
    """A hub whose docs and metrics are locked, and whose gauges are read at most every 2 s."""
    folder = tmp_path_factory.mktemp("locked-docs")
    with pytest.MonkeyPatch.context() as env:  # the module's hub outlives the per-test key fixture
        env.setenv("HUB_SYSTEM_KEY_ONESTOP", ONESTOP_KEY)
        async with running_hub(
            database_url=f"sqlite+aiosqlite:///{folder}/hub.db",
            routes_dir=write_routes(folder / "routes", portal_url),
            portal_url=portal_url,
            workers=False,
            docs_password=DOCS_PASSWORD,
            metrics_token=METRICS_TOKEN,
            metrics_cache_seconds=2,
        ) as running:
            yield running


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/openapi.json"])
async def test_a_docs_password_locks_the_docs_and_the_document(locked_hub: RunningHub, page: str) -> None:
    url = f"{locked_hub.url}{page}"
    refused = await locked_hub.client.get(url)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith('Basic realm="hub API docs"')  # the browser asks
    assert "HUB_DOCS_PASSWORD" in refused.json()["detail"]
    assert (await locked_hub.client.get(url, auth=("docs", "a guess"))).status_code == 401
    assert (await locked_hub.client.get(url, auth=("someone", DOCS_PASSWORD))).status_code == 401
    assert (await locked_hub.client.get(url, auth=("docs", DOCS_PASSWORD))).status_code == 200
    bearer = await locked_hub.client.get(url, headers={"Authorization": f"Bearer {DOCS_PASSWORD}"})
    assert bearer.status_code == 200
    # The scripts are the packages' own files: they stay open, and hold nothing of this hub.
    assert (await locked_hub.client.get(f"{locked_hub.url}/docs/assets/swagger-ui.css")).status_code == 200


async def test_a_metrics_token_locks_metrics(locked_hub: RunningHub) -> None:
    url = f"{locked_hub.url}/metrics"
    refused = await locked_hub.client.get(url)
    assert refused.status_code == 401
    assert "HUB_METRICS_TOKEN" in refused.json()["detail"]
    assert (await locked_hub.client.get(url, headers={"Authorization": "Bearer a-guess"})).status_code == 401
    scraped = await locked_hub.client.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200
    assert "hub_messages_accepted_total" in scraped.text
    assert (await locked_hub.client.get(url, auth=("prometheus", METRICS_TOKEN))).status_code == 200
    # The other operations endpoints stay open: a load balancer's health checks carry no token.
    assert (await locked_hub.client.get(f"{locked_hub.url}/readyz")).status_code == 200


async def test_scrapes_between_two_readings_get_the_last_reading_of_the_gauges(locked_hub: RunningHub) -> None:
    url, token = f"{locked_hub.url}/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"}
    await asyncio.sleep(2.1)  # past the reading of an earlier test's scrape: this one reads afresh
    await locked_hub.client.get(url, headers=token)
    posted = await locked_hub.post("dossier.upserted", dossier())  # no worker: it stays in the queue
    assert posted.status_code == 202, posted.text
    queue = locked_hub.hub.broker.topology.target_queue("national-portal")
    assert await locked_hub.hub.broker.queue_depth(queue) == 1
    metrics = (await locked_hub.client.get(url, headers=token)).text
    assert 'hub_messages_accepted_total{route="dossier-sync",source="onestop"} 1.0' in metrics  # counters are live
    assert 'hub_queue_depth{target="national-portal"} 0.0' in metrics  # the gauge as read before the message
    await asyncio.sleep(2.1)
    metrics = (await locked_hub.client.get(url, headers=token)).text
    assert 'hub_queue_depth{target="national-portal"} 1.0' in metrics  # the next reading, once it is due


async def test_behind_a_proxy_prefix_the_document_names_it_as_its_server(docs_hub: RunningHub) -> None:
    app = create_ingress_app(docs_hub.hub, run_relay=False)  # the same hub, mounted under /lgsp by a proxy
    transport = httpx.ASGITransport(app=app, root_path="/lgsp")
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        document = (await client.get("/openapi.json")).json()
    assert document["servers"] == [{"url": "/lgsp"}]
    assert "servers" not in (await docs_hub.client.get(f"{docs_hub.url}/openapi.json")).json()
