"""A citizen logs in with (mock) VNeID in a real browser, through the hub started as `hub run`, and the
one-stop system then looks them up in the (mock) population database through the hub.

Playwright drives Debian's Chromium headless (``apt-get install -y chromium``); Playwright's own
browser download is never used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from joserfc.jwk import RSAKey
from playwright.async_api import Browser, expect

from mocks._serve import serve_app
from mocks.population import create_app as create_population_app
from mocks.vneid import create_app as create_vneid_app
from tests.support.harness import ONESTOP_KEY
from tests.support.identity import (
    VNEID_CLIENT_ID,
    VNEID_CLIENT_SECRET,
    create_relying_party,
    write_identity_e2e_routes,
)
from tests.support.logs import has_event
from tests.support.processes import HubEnvironment, HubProcess, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def identity_stack(tmp_path: Path) -> Iterator[tuple[HubEnvironment, str, HubProcess]]:
    """Mock VNeID, mock population DB, the hub as `hub run`, and a fake one-stop system in front."""
    key_file = tmp_path / "assertion-key.pem"
    key_file.write_bytes(RSAKey.generate_key(2048).as_pem(private=True))
    with (
        serve_app(create_vneid_app(client_id=VNEID_CLIENT_ID, client_secret=VNEID_CLIENT_SECRET)) as vneid_url,
        serve_app(create_population_app()) as population_url,
    ):
        environment = HubEnvironment(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db",
            routes_dir=tmp_path / "routes",
            logs_dir=tmp_path / "logs",
            extra={"HUB_IDENTITY_SIGNING_KEY_FILE": str(key_file)},
        )
        with serve_app(create_relying_party(environment.url, ONESTOP_KEY)) as onestop_url:
            write_identity_e2e_routes(
                environment.routes_dir, vneid_url=vneid_url, population_url=population_url, return_base=onestop_url
            )
            hub = HubProcess(environment, "run").start()
            try:
                hub.wait_ready()
                hub.wait_log("request_worker_started")
                yield environment, onestop_url, hub
            finally:
                assert hub.stop() == 0, hub.output()[-2000:]
                environment.delete_broker_objects()


async def test_a_citizen_logs_in_with_vneid_and_is_looked_up(
    browser: Browser, identity_stack: tuple[HubEnvironment, str, HubProcess]
) -> None:
    environment, onestop_url, hub = identity_stack
    context = await browser.new_context(locale="vi-VN")
    page = await context.new_page()
    try:
        await page.goto(onestop_url)
        await page.click("#login")
        await expect(page.locator("h1")).to_have_text("Đăng nhập VNeID (giả lập)")  # the provider's page
        await page.click("[data-testid=login-000190000001]")  # Nguyễn Văn An, level 2
        await expect(page.locator("#welcome")).to_have_text("Xin chào Nguyễn Văn An")
        await expect(page.locator("#loa")).to_have_text("LoA 2")
        await expect(page.locator("#verified")).to_contain_text("signature verified")
        await expect(page.locator("#address")).to_have_text("Phường Hoàn Kiếm, Thành phố Hà Nội")

        # A level-1 account is refused by this level-2 route, and told why.
        await page.goto(onestop_url)
        await page.click("#login")
        await page.click("[data-testid=login-000185000002]")
        await expect(page.locator("#error")).to_contain_text("insufficient_loa")
        await expect(page.locator("#error")).to_contain_text("level 2")
    finally:
        await context.close()

    audit = run_cli(environment, "audit", "--since", "1h", "--system", "onestop", "--json")
    assert audit.returncode == 0, audit.stderr
    records = [json.loads(line) for line in audit.stdout.splitlines()]
    assert [(r["kind"], r["outcome"]) for r in records] == [
        ("identity.login", "ok"),
        ("population.lookup", "found"),
        ("identity.login", "refused_loa"),
    ]
    assert records[1]["official"] == "motcua.tiepnhan01"
    assert {r["subject"] for r in records} == {"00********01", "00********02"}
    logs = hub.output()
    assert has_event(logs, "login_verified")
    for personal in ("000190000001", "000185000002", "Nguyễn Văn An", json.dumps("Nguyễn Văn An")[1:-1]):
        assert personal not in logs
