"""A citizen pays a dossier's fee on the (mock) payment page in a real browser, and a result goes out by
(mock) VNPost to delivered — through the hub started as `hub run`, as a user starts it.

Playwright drives Debian's Chromium headless (the ``chromium_executable`` fixture); Playwright's own
browser download is never used.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from tests.conftest import CHROMIUM_ARGS
from tests.support.harness import ONESTOP_KEY, eventually
from tests.support.partners import (  # noqa: F401 - fixtures
    RECEIVER,
    payment_url,
    platform,
    received,
    receiver,
    receiver_url,
    vnpost,
    vnpost_url,
    write_partner_routes,
)
from tests.support.payloads import dossier, dossier_code
from tests.support.processes import HubEnvironment, HubProcess, run_cli

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {ONESTOP_KEY}"}
FEES = [{"TenPhiLePhi": "Lệ phí cấp giấy phép", "MaPhiLePhi": "LP02", "Gia": 200_000}]


@pytest.fixture(scope="module")
def hub_run(
    tmp_path_factory: pytest.TempPathFactory,
    portal_url: str,
    payment_url: str,  # noqa: F811
    vnpost_url: str,  # noqa: F811
    receiver_url: str,  # noqa: F811
) -> Iterator[HubEnvironment]:
    """`hub run` with the portal, payment platform, VNPost and one-stop routes; mocks told where to call back."""
    folder = tmp_path_factory.mktemp("partners-e2e")
    environment = HubEnvironment(
        database_url=f"sqlite+aiosqlite:///{folder}/hub.db",
        routes_dir=write_partner_routes(
            folder / "routes",
            portal_url=portal_url,
            payment_url=payment_url,
            vnpost_url=vnpost_url,
            receiver_url=receiver_url,
            query_after="1h",
        ),
        logs_dir=folder / "logs",
    )
    hub = HubProcess(environment, "run").start()
    try:
        hub.wait_ready()
        hub.wait_log("request_worker_started")
        httpx.post(f"{payment_url}/_mock/config", json={"callback_url": f"{environment.url}/v1/callbacks/payment"})
        httpx.post(f"{vnpost_url}/_mock/config", json={"callback_url": f"{environment.url}/v1/callbacks/vnpost"})
        yield environment
    finally:
        assert hub.stop() == 0, hub.output()[-3000:]


@pytest.fixture
async def http(hub_run: HubEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=hub_run.url, headers=AUTH, timeout=20) as client:
        yield client


async def _send_dossier(http: httpx.AsyncClient, portal: httpx.Client, code: str, status: int) -> None:
    payload = dossier(code, status=status, DanhSachLePhi=FEES)
    sent = await http.post("/v1/messages", json={"type": "dossier.upserted", "payload": payload})
    assert sent.status_code == 202, sent.text

    def on_portal() -> bool:
        return portal.get(f"/_mock/dossiers/{code}").status_code == 200

    await eventually(lambda: asyncio.to_thread(on_portal))


async def _pay_request(http: httpx.AsyncClient, code: str) -> dict[str, Any]:
    answer = await http.post(
        "/v1/requests/payment.init", json={"MaHoSo": code, "DanhSachLePhi": FEES, "SoTien": 200_000}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["result"])


async def test_a_citizen_pays_on_the_payment_page_and_every_system_learns_it(
    hub_run: HubEnvironment,
    http: httpx.AsyncClient,
    portal: httpx.Client,
    platform: httpx.AsyncClient,  # noqa: F811
    receiver: httpx.AsyncClient,  # noqa: F811
    chromium_executable: str,
) -> None:
    code = dossier_code()
    await _send_dossier(http, portal, code, status=6)
    payment = await _pay_request(http, code)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(payment["UrlThanhToan"])
            await expect(page.locator("#amount")).to_have_text("200.000 VND")
            await expect(page.locator("#reference")).to_have_text(payment["MaThamChieu"])
            await page.click("#pay")
            await expect(page.locator("#result")).to_have_attribute("data-code", "00")
            transaction = await page.locator("#transaction").inner_text()
        finally:
            await browser.close()

    completed = await eventually(lambda: received(receiver, "payment.completed", code))
    assert len(completed) == 1
    assert completed[0]["payload"]["MaGiaoDich"] == transaction
    assert completed[0]["payload"]["KenhXacNhan"] == "callback", "the verified callback settled it"
    assert completed[0]["payload"]["SoTien"] == 200_000

    def paid_on_portal() -> dict[str, Any] | None:
        current = portal.get(f"/_mock/dossiers/{code}").json()["current"]
        return current if current.get("DuocThanhToanTrucTuyen") == 1 else None

    current = await eventually(lambda: asyncio.to_thread(paid_on_portal))
    assert current["TrangThaiHoSo"] == 4
    await eventually(lambda: received(receiver, "payment.receipt", code))
    [callback] = (await platform.get("/_mock/callbacks")).json()
    assert callback["answer"]["MaLoi"] == "00"

    # A second payment whose callback is lost: an official has the hub ask the platform at once.
    other = dossier_code()
    await _send_dossier(http, portal, other, status=6)
    lost = await _pay_request(http, other)
    await platform.post("/_mock/faults", json={"lose_next": 1})
    await platform.post(f"/_mock/payments/{lost['MaThamChieu']}/complete", json={"outcome": "paid"})
    checked = await asyncio.to_thread(run_cli, hub_run, "payments", "reconcile", "--reference", lost["MaThamChieu"])
    assert checked.returncode == 0, checked.stderr
    assert "1 settled" in checked.stdout
    recovered = await eventually(lambda: received(receiver, "payment.completed", other))
    assert recovered[0]["payload"]["KenhXacNhan"] == "reconciliation"


async def test_a_result_is_sent_by_post_and_followed_to_delivered(
    hub_run: HubEnvironment,
    http: httpx.AsyncClient,
    portal: httpx.Client,
    vnpost: httpx.AsyncClient,  # noqa: F811
    receiver: httpx.AsyncClient,  # noqa: F811
) -> None:
    code = dossier_code()
    await _send_dossier(http, portal, code, status=9)
    answer = await http.post("/v1/requests/postal.order", json={"MaHoSo": code, "Receiver": RECEIVER})
    assert answer.status_code == 200, answer.text
    item = answer.json()["result"]["ItemCode"]

    async def statuses() -> list[int]:
        return [m["payload"]["Status"] for m in await received(receiver, "postal.status_changed", code)]

    for status in range(1, 5):
        await vnpost.post("/_mock/clock/advance", json={"ItemCode": item})

        async def reached(expected: int = status) -> bool:
            seen = await statuses()
            return bool(seen) and seen[-1] == expected

        await eventually(reached)
    assert await statuses() == [0, 1, 2, 3, 4]
    delivered = (await received(receiver, "postal.status_changed", code))[-1]["payload"]
    assert (delivered["StatusName"], delivered["OrderNumber"]) == ("Phát thành công", code)

    shown = await asyncio.to_thread(run_cli, hub_run, "post", "show", item, "--json")
    assert shown.returncode == 0, shown.stderr
    parcel = json.loads(shown.stdout)
    assert (parcel["state"], parcel["Status"], parcel["emitted_status"]) == ("delivered", 4, 4)
    assert [e["channel"] for e in parcel["events"]] == ["order", "callback", "callback", "callback", "callback"]
