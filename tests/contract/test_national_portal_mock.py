"""The fake national portal behaves like the real one where the adapter's tests rely on it."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from mocks._serve import serve_app
from mocks.national_portal import create_app
from tests.contract.conftest import CLIENT_ID, CLIENT_SECRET, MockPortalControl

CODE = "H15.50.05.13-261008-0975"


def dossier(code: str = CODE, status: int = 1, **changes: Any) -> dict[str, Any]:
    return {
        "MaHoSo": code,
        "MaTTHC": "1.001193",
        "TenTTHC": "Đăng ký khai sinh",
        "KenhThucHien": 1,
        "ChuHoSo": "Lê Văn Cường",
        "LoaiDoiTuong": 1,
        "NgayTiepNhan": "20261008083000",
        "TrangThaiHoSo": status,
        **changes,
    }


def step(code: str = CODE, n: int = 1) -> dict[str, Any]:
    return {
        "MaHoSo": code,
        "NguoiXuLy": "Trần Văn Bình",
        "ThoiDiemXuLy": f"2026100809{n:02d}00",
        "NoiDungXuLy": f"Bước {n}",
        "TrangThai": 4,
    }


class Portal:
    """Calls the fake portal's services the way a client would."""

    def __init__(self, control: MockPortalControl, token: str) -> None:
        self.control = control
        self.headers = {"Authorization": f"Bearer {token}"}

    async def post(self, service: str, body: Any) -> httpx.Response:
        return await self.control.http.post(f"/dvcqg/{service}", json=body, headers=self.headers)

    async def sync(self, *items: dict[str, Any], updating: bool = False) -> dict[str, Any]:
        response = await self.post("DongBoHoSoMC", {"isUpdating": updating, "data": list(items)})
        assert response.status_code == 200
        return dict(response.json())

    async def steps(self, *items: dict[str, Any]) -> dict[str, Any]:
        response = await self.post("CapNhatTienDoHoSoMC", {"data": list(items)})
        assert response.status_code == 200
        return dict(response.json())


@pytest.fixture
async def client(mock_portal: MockPortalControl) -> Portal:
    return Portal(mock_portal, await mock_portal.token())


async def test_create_update_and_history(client: Portal, mock_portal: MockPortalControl) -> None:
    assert (await client.sync(dossier(status=1)))["error_code"] == 0
    again = await client.sync(dossier(status=1))
    assert again["error_code"] == -1
    assert "đã tồn tại" in again["message"]
    assert (await client.sync(dossier(status=2), updating=True))["error_code"] == 0
    assert (await client.sync(dossier(status=4), updating=True))["error_code"] == 0

    record = await mock_portal.dossier(CODE)
    assert record["status_history"] == [1, 2, 4]
    assert record["current"]["TrangThaiHoSo"] == 4


async def test_update_and_steps_for_unknown_dossier_are_refused(client: Portal) -> None:
    update = await client.sync(dossier(), updating=True)
    assert update["error_code"] == -1
    assert CODE in update["message"]
    steps = await client.steps(step())
    assert steps["error_code"] == -1
    assert CODE in steps["message"]


async def test_unknown_procedure_is_named(client: Portal) -> None:
    reply = await client.sync(dossier(MaTTHC="X"))
    assert reply == {"error_code": -1, "message": "MaTTHC 'X' không có trong danh mục thủ tục hành chính"}


async def test_required_fields_are_checked(client: Portal) -> None:
    item = dossier()
    del item["ChuHoSo"]
    reply = await client.sync(item)
    assert reply["error_code"] == -1
    assert "ChuHoSo" in reply["message"]


async def test_at_most_ten_steps(client: Portal, mock_portal: MockPortalControl) -> None:
    await client.sync(dossier())
    assert (await client.steps(*(step(n=n) for n in range(1, 11))))["error_code"] == 0
    eleven = await client.steps(*(step(n=n) for n in range(11, 22)))
    assert eleven["error_code"] == -1
    assert "10" in eleven["message"]
    assert len((await mock_portal.dossier(CODE))["steps"]) == 10


async def test_malformed_json_is_http_400(client: Portal, mock_portal: MockPortalControl) -> None:
    response = await mock_portal.http.post(
        "/dvcqg/DongBoHoSoMC",
        content=b'{"isUpdating": false, "data": [',
        headers={**client.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
async def test_service_calls_need_a_valid_token(mock_portal: MockPortalControl, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await mock_portal.http.post("/dvcqg/TraCuuHoSo", json={"MaHoSo": CODE}, headers=headers)
    assert response.status_code == 401


async def test_expire_tokens(client: Portal, mock_portal: MockPortalControl) -> None:
    await mock_portal.set_faults(expire_tokens=True)
    response = await client.post("TraCuuHoSo", {"MaHoSo": CODE})
    assert response.status_code == 401


async def test_token_endpoint(mock_portal: MockPortalControl) -> None:
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    ok = await mock_portal.http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert ok.status_code == 200
    assert ok.json()["token_type"] == "Bearer"
    assert ok.json()["expires_in"] == 3600
    wrong_grant = await mock_portal.http.post("/oauth2/token", data={"grant_type": "password"})
    assert wrong_grant.status_code == 400
    anonymous = await mock_portal.http.post("/oauth2/token", data={"grant_type": "client_credentials"})
    assert anonymous.status_code == 401
    await mock_portal.set_faults(required_client_id="someone-else")
    refused = await mock_portal.http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


async def test_look_up(client: Portal) -> None:
    await client.sync(dossier())
    found = (await client.post("TraCuuHoSo", {"MaHoSo": CODE})).json()
    assert found["error_code"] == 0
    assert found["data"]["TrangThaiHoSo"] == 1
    missing = (await client.post("TraCuuHoSo", {"MaHoSo": "H15.50.05.13-261008-0001"})).json()
    assert missing["error_code"] == -1


async def test_faults_touch_service_calls_only(client: Portal, mock_portal: MockPortalControl) -> None:
    await mock_portal.set_faults(fail_next=1, status=500, outage_seconds=0)
    assert (await mock_portal.http.get("/healthz")).status_code == 200
    assert (await mock_portal.http.get("/_mock/stats")).status_code == 200
    await mock_portal.token()
    assert (await mock_portal.http.get("/_mock/faults")).json()["fail_next"] == 1
    response = await client.post("TraCuuHoSo", {"MaHoSo": CODE})
    assert response.status_code == 500
    assert (await mock_portal.http.get("/_mock/faults")).json()["fail_next"] == 0


async def test_fault_knobs_can_be_read_and_cleared(mock_portal: MockPortalControl) -> None:
    knobs = await mock_portal.set_faults(latency_ms=5, reject_procedures=["1.001193"], retry_after=2)
    assert knobs["latency_ms"] == 5
    assert knobs["reject_procedures"] == ["1.001193"]
    assert knobs["retry_after"] == "2"
    cleared = (await mock_portal.http.delete("/_mock/faults")).json()
    assert cleared["latency_ms"] == 0
    assert cleared["reject_procedures"] == []
    unknown = await mock_portal.http.post("/_mock/faults", json={"fail_nxt": 1})
    assert unknown.status_code == 422


async def test_error_next_then_normal(client: Portal, mock_portal: MockPortalControl) -> None:
    await mock_portal.set_faults(error_next=1, error_message="Hệ thống bận")
    assert await client.sync(dossier()) == {"error_code": -1, "message": "Hệ thống bận"}
    assert (await client.sync(dossier()))["error_code"] == 0


async def test_calls_log_and_stats_count_duplicates(client: Portal, mock_portal: MockPortalControl) -> None:
    await client.sync(dossier(status=1))
    await client.sync(dossier(status=2), updating=True)
    await client.sync(dossier(status=2), updating=True)  # the same state twice: one duplicate
    await client.sync(dossier(status=2, TrichYeuHoSo="khác"), updating=True)  # other body: not one
    await client.steps(step(n=1))
    await client.steps(step(n=1), step(n=2))  # step 1 again: one duplicate

    calls = await mock_portal.calls()
    assert [c["service"] for c in calls] == ["DongBoHoSoMC"] * 4 + ["CapNhatTienDoHoSoMC"] * 2
    assert calls[1]["isUpdating"] is True
    assert calls[5]["MaHoSo"] == [CODE, CODE]
    assert all(c["outcome"] == "accepted" and c["error_code"] == 0 and c["status"] == 200 for c in calls)
    assert calls[0]["body"]["data"][0]["MaHoSo"] == CODE

    stats = await mock_portal.stats()
    assert stats["calls"] == 6
    assert stats["accepted_upserts_by_dossier"] == {CODE: 4}
    assert stats["accepted_steps_by_dossier"] == {CODE: 3}
    assert stats["duplicate_upserts"] == 1
    assert stats["duplicate_steps"] == 1
    assert stats["duplicates"] == 2

    await mock_portal.http.delete("/_mock/calls")
    assert await mock_portal.calls() == []
    assert (await mock_portal.http.get(f"/_mock/dossiers/{CODE}")).status_code == 404
    assert (await mock_portal.stats())["duplicates"] == 0


def test_startup_credentials_survive_a_fault_reset() -> None:
    form = {"grant_type": "client_credentials", "client_id": "hub", "client_secret": "s3"}
    with serve_app(create_app(client_id="hub", client_secret="s3")) as url, httpx.Client(base_url=url) as http:
        assert http.post("/oauth2/token", data={**form, "client_secret": "other"}).status_code == 401
        http.delete("/_mock/faults")
        assert http.post("/oauth2/token", data={**form, "client_secret": "other"}).status_code == 401
        assert http.post("/oauth2/token", data=form).status_code == 200
