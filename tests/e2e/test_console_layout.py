"""The console's tables fit their cards on the screens ops use (1280 to 1920 px wide) and scroll inside
their card on narrower ones; the page itself never scrolls sideways (Playwright driving Debian's Chromium).

The hub here has two delivery targets, so the overview shows its target cards side by side, as a
province's hub does. ``HUB_CONSOLE_SCREENSHOTS=folder`` keeps the screenshots."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.console import ADMIN_PASSWORD, CONSOLE_SETTINGS, dead_lettered_dossier
from tests.support.harness import MINISTRY_KEY, ONESTOP_KEY, RunningHub, running_hub, write_routes
from tests.support.payloads import dossier, step

pytestmark = pytest.mark.e2e

#: The hub's widths for ops screens (tables fit) and a narrow one (tables scroll inside their card).
WIDE = (1280, 1400, 1920)
NARROW = 700


@pytest.fixture(scope="module")
async def layout_hub(tmp_path_factory: pytest.TempPathFactory, portal_url: str) -> AsyncIterator[RunningHub]:
    folder = tmp_path_factory.mktemp("console-layout")
    routes = write_routes(folder / "routes", portal_url)
    (routes / "civil-registry.yaml").write_text(
        textwrap.dedent(
            f"""
            targets:
              - id: civil-registry-ministry
                adapter: national_portal
                config: {{base_url: "{portal_url}", client_id: test-client, client_secret: test-secret-not-real}}
            routes:
              - name: dossier-progress-to-civil-registry
                type: dossier.progress
                schema: dossier.progress/v1
                targets: [civil-registry-ministry]
            """
        ),
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as env:  # the ingress reads the system keys when it starts
        env.setenv("HUB_SYSTEM_KEY_ONESTOP", ONESTOP_KEY)
        env.setenv("HUB_SYSTEM_KEY_MINISTRY", MINISTRY_KEY)
        async with running_hub(
            database_url=f"sqlite+aiosqlite:///{folder}/hub.db",
            routes_dir=routes,
            portal_url=portal_url,
            **CONSOLE_SETTINGS,
        ) as running:
            yield running


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": WIDE[0], "height": 900}, locale="vi-VN")
    opened = await context.new_page()
    yield opened
    await context.close()


#: What does not fit: a table past its card's right edge (with ``fit``, the whole table; otherwise its
#: scroller, the table scrolling within it), a scroller that has to scroll although ``fit``, and a page
#: wider than the window.
_OVERFLOWS = """(fit) => {
  const problems = [];
  for (const table of document.querySelectorAll("main table")) {
    const name = `table.${table.className || "(no class)"}`;
    const card = table.closest(".card");
    if (!card) { problems.push(`${name} is not in a card`); continue; }
    const scroller = table.closest(".table-scroll");
    const shown = fit || !scroller ? table : scroller;
    const past = shown.getBoundingClientRect().right - card.getBoundingClientRect().right;
    if (past > 0.5) problems.push(`${name} ends ${Math.round(past)} px past its card`);
    if (fit && scroller && scroller.scrollWidth > scroller.clientWidth) problems.push(`${name} scrolls`);
  }
  const wide = document.documentElement.scrollWidth;
  if (wide > window.innerWidth) problems.push(`the page is ${wide} px wide in a ${window.innerWidth} px window`);
  return problems;
}"""


async def _screenshot(page: Page, name: str, tmp_path: Path) -> None:
    shot = tmp_path / name
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000, f"{name} looks empty"
    folder = os.environ.get("HUB_CONSOLE_SCREENSHOTS")
    if folder:
        shutil.copyfile(shot, Path(folder) / name)


async def test_tables_fit_their_cards_from_1280_to_1920_px_and_scroll_inside_them_below(
    layout_hub: RunningHub, portal: httpx.Client, page: Page, tmp_path: Path
) -> None:
    message_id, payload = await dead_lettered_dossier(layout_hub, portal)
    discarded, _ = await dead_lettered_dossier(layout_hub, portal)
    code = payload["MaHoSo"]
    for n in range(1, 3):
        await layout_hub.post("dossier.progress", step(code, n))
    await layout_hub.post("dossier.upserted", dossier(status=2))

    await page.goto(f"{layout_hub.url}/console/messages/{discarded}")
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    await page.click(".login button[type=submit]")
    await page.fill('input[name="reason"]', "Hồ sơ trùng, đã xử lý trên cổng")  # an entry for the audit page
    page.once("dialog", lambda dialog: dialog.accept())
    await page.click('[data-action="discard"]')
    await expect(page.locator(".notice")).to_be_visible()

    pages = {
        "overview": "/console",
        "dead-letter-targets": "/console/dead-letters",
        "dead-letters": "/console/dead-letters/national-portal",
        "message": f"/console/messages/{message_id}",
        "dossier": f"/console/dossiers/{code}",
        "audit": "/console/audit",
    }
    for width in (*WIDE, NARROW):
        await page.set_viewport_size({"width": width, "height": 900})
        for name, path in pages.items():
            await page.goto(f"{layout_hub.url}{path}")
            await expect(page.locator("main table").first).to_be_visible()
            problems = await page.evaluate(_OVERFLOWS, width in WIDE)
            await _screenshot(page, f"console-{name}-{width}.png", tmp_path)
            assert problems == [], f"{path} at {width} px: {problems}"
    await page.set_viewport_size({"width": 1400, "height": 900})  # the English labels are longer
    for name, path in pages.items():
        await page.goto(f"{layout_hub.url}{path}?lang=en")
        await expect(page.locator("main table").first).to_be_visible()
        problems = await page.evaluate(_OVERFLOWS, True)
        await _screenshot(page, f"console-{name}-1400-en.png", tmp_path)
        assert problems == [], f"{path}?lang=en at 1400 px: {problems}"
