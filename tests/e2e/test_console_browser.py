"""The ops console in a real browser (Playwright driving Debian's Chromium, headless).

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``); Playwright's own browser
download is never used. ``HUB_CONSOLE_SCREENSHOTS=docs/img`` also writes the screenshots
of docs/console.md and the README there.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.console import (
    ADMIN_PASSWORD,
    CONSOLE_SETTINGS,
    VIEWER,
    VIEWER_PASSWORD,
    dead_lettered_dossier,
)
from tests.support.harness import MINISTRY_KEY, ONESTOP_KEY, RunningHub, eventually, running_hub, write_routes
from tests.support.payloads import dossier, step

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def console_hub(tmp_path_factory: pytest.TempPathFactory, portal_url: str) -> AsyncIterator[RunningHub]:
    folder = tmp_path_factory.mktemp("console-browser")
    with pytest.MonkeyPatch.context() as env:  # the ingress reads the system keys when it starts
        env.setenv("HUB_SYSTEM_KEY_ONESTOP", ONESTOP_KEY)
        env.setenv("HUB_SYSTEM_KEY_MINISTRY", MINISTRY_KEY)
        async with running_hub(
            database_url=f"sqlite+aiosqlite:///{folder}/hub.db",
            routes_dir=write_routes(folder / "routes", portal_url),
            portal_url=portal_url,
            **CONSOLE_SETTINGS,
        ) as running:
            yield running


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1360, "height": 900}, locale="vi-VN")
    opened = await context.new_page()
    yield opened
    await context.close()


async def _screenshot(page: Page, name: str, tmp_path: Path) -> None:
    """Every test page renders to an image; with HUB_CONSOLE_SCREENSHOTS set it is kept for the docs."""
    shot = tmp_path / name
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000, f"{name} looks empty"
    folder = os.environ.get("HUB_CONSOLE_SCREENSHOTS")
    if folder:
        shutil.copyfile(shot, Path(folder) / name)


async def _log_in(page: Page, user: str, password: str) -> None:
    await expect(page).to_have_url(re.compile(r".*/console/login\?next=.*"))
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", password)
    await page.click(".login button[type=submit]")


async def test_an_operator_finds_a_dossier_and_replays_its_dead_letter_to_the_portal(
    console_hub: RunningHub, portal: httpx.Client, page: Page, tmp_path: Path
) -> None:
    message_id, payload = await dead_lettered_dossier(console_hub, portal)
    code = payload["MaHoSo"]

    await page.goto(f"{console_hub.url}/console")
    await _log_in(page, "admin", ADMIN_PASSWORD)
    await expect(page).to_have_url(f"{console_hub.url}/console")
    card = page.locator('[data-target="national-portal"]')
    await expect(card.locator('[data-field="dlq"] a')).not_to_have_text("0")

    await page.fill(".quick-search input[name=q]", code)
    await page.press(".quick-search input[name=q]", "Enter")
    await expect(page.locator('[data-field="dossier"]')).to_have_text(code)
    await expect(page.locator('tr[data-kind="dead_lettered"]')).to_have_count(1)
    await expect(page.locator('tr[data-kind="dead_lettered"] .detail')).to_contain_text("1.000894")
    await expect(page.locator(f'tr[data-message="{message_id}"] [data-field="status"]')).to_have_text("1 – Mới")
    await _screenshot(page, "console-dossier-timeline.png", tmp_path)
    await page.click("nav >> text=Hàng đợi lỗi (DLQ)")
    await page.click('tr[data-target="national-portal"] a')
    await expect(page.locator(f'tr[data-message="{message_id}"]')).to_have_count(1)
    await _screenshot(page, "console-dead-letters.png", tmp_path)
    await page.go_back()
    await page.go_back()

    await page.click(f'tr[data-message="{message_id}"] a')
    await expect(page.locator('[data-field="message-id"]')).to_have_text(message_id)
    await expect(page.locator('[data-field="payload"]')).not_to_contain_text("0900000001")
    portal.delete("/_mock/faults")
    await page.click('tr[data-target="national-portal"] [data-action="replay"]')
    await expect(page.locator(".notice")).to_have_text("Đã gửi lại 1 tin.")

    async def arrived() -> bool:
        return portal.get(f"/_mock/dossiers/{code}").status_code == 200

    await eventually(arrived)
    assert portal.get(f"/_mock/dossiers/{code}").json()["current"]["MaTTHC"] == "1.000894"

    async def shown_delivered() -> bool:
        await page.reload()
        return await page.locator('tr[data-target="national-portal"] [data-field="state"]').inner_text() == "đã chuyển"

    await eventually(shown_delivered)
    await expect(page.locator('tr[data-kind="replayed"]')).to_contain_text("console:admin")


async def test_a_viewer_sees_no_replay_and_is_refused_when_posting_one(
    console_hub: RunningHub, portal: httpx.Client, page: Page
) -> None:
    message_id, _ = await dead_lettered_dossier(console_hub, portal)
    await page.goto(f"{console_hub.url}/console/messages/{message_id}")
    await _log_in(page, VIEWER, VIEWER_PASSWORD)
    await expect(page).to_have_url(f"{console_hub.url}/console/messages/{message_id}")
    await expect(page.locator(".who")).to_have_text(f"{VIEWER} · người xem")
    await expect(page.locator('[data-action="replay"]')).to_have_count(0)
    await expect(page.locator('tr[data-target="national-portal"] .actions')).to_contain_text("người xem")

    refused = await page.request.post(
        f"{console_hub.url}/console/messages/{message_id}/replay",
        form={"target": "national-portal", "csrf": "guessed"},
    )
    assert refused.status == 403
    assert "chỉ vận hành viên" in await refused.text()
    assert await console_hub.delivery_state(message_id) == "dead_lettered"


async def test_an_unauthenticated_visitor_is_sent_to_log_in_and_then_back(console_hub: RunningHub, page: Page) -> None:
    await page.goto(f"{console_hub.url}/console/dead-letters/national-portal?lang=en")
    await expect(page).to_have_url(re.compile(r".*/console/login\?next=.*"))
    await expect(page.locator("h1")).to_have_text("Log in to the console")
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", "not the password")
    await page.click(".login button[type=submit]")
    await expect(page.locator(".alert")).to_have_text("The user name or password is wrong.")
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    await page.click(".login button[type=submit]")
    await expect(page).to_have_url(f"{console_hub.url}/console/dead-letters/national-portal?lang=en")
    await expect(page.locator("h1")).to_have_text("Dead letters: national-portal")


async def test_the_overview_renders_live_numbers(
    console_hub: RunningHub, portal: httpx.Client, page: Page, tmp_path: Path
) -> None:
    code = dossier()["MaHoSo"]
    ids = [(await console_hub.post("dossier.upserted", dossier(code, status=1))).json()["id"]]
    ids += [(await console_hub.post("dossier.upserted", dossier(status=2))).json()["id"] for _ in range(5)]
    for message_id in ids:

        async def delivered(message_id: str = message_id) -> bool:
            return await console_hub.delivery_state(message_id) == "delivered"

        await eventually(delivered)
    for n in range(1, 4):
        await console_hub.post("dossier.progress", step(code, n))
    await dead_lettered_dossier(console_hub, portal)

    await page.goto(f"{console_hub.url}/console")
    await _log_in(page, "admin", ADMIN_PASSWORD)
    card = page.locator('[data-target="national-portal"]')
    await expect(card.locator('[data-field="health"]')).to_have_text("Hoạt động")
    delivered_1h = card.locator('tr[data-route="dossier-sync"] [data-field="delivered"]')
    await expect(delivered_1h).not_to_have_text("0")
    generated = await page.locator('[data-field="generated"]').inner_text()
    await expect(page.locator('[data-field="generated"]')).not_to_have_text(generated, timeout=15_000)  # htmx poll
    await _screenshot(page, "console-overview.png", tmp_path)
