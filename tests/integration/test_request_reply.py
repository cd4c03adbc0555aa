"""Request-reply through the hub: POST /v1/requests/{type} → RabbitMQ → request worker → mock SOAP server."""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.audit import AuditLog
from mocks._serve import serve_app
from mocks.population import create_app as create_population_app
from tests.support.harness import MINISTRY_KEY, ONESTOP_KEY, RunningHub, running_hub
from tests.support.identity import (
    CITIZEN_AN,
    CITIZEN_MAI_NFD,
    CITIZEN_NGOC,
    UNKNOWN_CITIZEN,
    population_request,
    write_population_routes,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def population_url() -> Iterator[str]:
    with serve_app(create_population_app()) as url:
        yield url


@pytest.fixture
def population(population_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=population_url, timeout=10) as client:
        client.delete("/_mock/faults")
        client.delete("/_mock/calls")
        yield client
        client.delete("/_mock/faults")


@pytest.fixture(scope="module")
async def rr_hub(population_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningHub]:
    """One hub (SQLite store) for the module: request-reply calls leave no state besides the audit trail."""
    os.environ.setdefault("HUB_SYSTEM_KEY_ONESTOP", ONESTOP_KEY)
    os.environ.setdefault("HUB_SYSTEM_KEY_MINISTRY", MINISTRY_KEY)
    folder = tmp_path_factory.mktemp("rr")
    routes = write_population_routes(folder / "routes", population_url)
    async with running_hub(
        database_url=f"sqlite+aiosqlite:///{folder}/hub.db", routes_dir=routes, portal_url=population_url
    ) as running:
        yield running


async def _request(hub: RunningHub, message_type: str, body: Any, *, key: str = ONESTOP_KEY) -> httpx.Response:
    return await hub.client.post(
        f"{hub.url}/v1/requests/{message_type}", json=body, headers={"Authorization": f"Bearer {key}"}
    )


async def _audit(hub: RunningHub, request_id: str) -> dict[str, Any]:
    entries = await AuditLog(hub.hub.store.engine).entries(since=datetime.now(UTC) - timedelta(minutes=10))
    return next(e.as_json() for e in entries if e.request_id == request_id)


async def test_lookup_answers_the_canonical_citizen_and_is_audited(
    rr_hub: RunningHub, population: httpx.Client
) -> None:
    response = await _request(rr_hub, "population.lookup", population_request(CITIZEN_AN))
    assert response.status_code == 200, response.text
    body = response.json()
    citizen = body["result"]["CongDan"]
    assert body["result"]["found"] is True
    assert citizen["HoVaTen"] == {"Ho": "Nguyễn", "ChuDem": "Văn", "Ten": "An", "DayDu": "Nguyễn Văn An"}
    assert citizen["ThuongTru"]["TenPhuongXa"] == "Phường Hoàn Kiếm"
    assert citizen["QueQuan"]["MaTinhThanh"] == "37"  # former Hà Nam (35) is part of Ninh Bình now
    assert citizen["QueQuan"]["MaTinhThanhCu"] == "35"
    # MaYeuCau sent to the population database is the hub's request id; MaTichHop is the hub's.
    assert body["result"]["MaYeuCau"] == body["id"]
    [call] = population.get("/_mock/calls").json()
    assert call["operation"] == "XacMinhThongTinNhanThan"
    record = await _audit(rr_hub, body["id"])
    assert record["system"] == "onestop"
    assert record["official"] == "canbo.test01"
    assert record["purpose"] == "1.000123"
    assert record["outcome"] == "found"
    assert record["subject"] == "00********01"
    assert CITIZEN_AN not in json.dumps(record)


async def test_names_stored_decomposed_come_back_nfc(rr_hub: RunningHub, population: httpx.Client) -> None:
    response = await _request(rr_hub, "population.lookup", population_request(CITIZEN_MAI_NFD))
    name = response.json()["result"]["CongDan"]["HoVaTen"]["DayDu"]
    assert name == unicodedata.normalize("NFC", "Hoàng Thị Mai")
    assert unicodedata.is_normalized("NFC", name)


async def test_unknown_citizen_is_an_answer_not_an_error(rr_hub: RunningHub, population: httpx.Client) -> None:
    response = await _request(rr_hub, "population.lookup", population_request(UNKNOWN_CITIZEN))
    assert response.status_code == 200
    assert response.json()["result"] == {"MaYeuCau": response.json()["id"], "found": False, "CongDan": None}
    assert (await _audit(rr_hub, response.json()["id"]))["outcome"] == "not_found"


async def test_verify_compares_name_in_either_unicode_form(rr_hub: RunningHub, population: httpx.Client) -> None:
    decomposed = unicodedata.normalize("NFD", "Trần Thị Bích Ngọc")
    ok = await _request(
        rr_hub, "population.verify", population_request(CITIZEN_NGOC, HoVaTen=decomposed, NgayThangNamSinh="19850704")
    )
    wrong = await _request(
        rr_hub,
        "population.verify",
        population_request(CITIZEN_NGOC, HoVaTen="Trần Thị Ngọc", NgayThangNamSinh="19850704"),
    )
    assert ok.json()["result"]["TonTai"] is True
    assert wrong.json()["result"]["TonTai"] is False


@pytest.mark.parametrize(
    ("field", "value", "sentence"),
    [
        ("SoDinhDanh", "12345", "12-digit personal ID number"),
        ("SoDinhDanh", "00019000000A", "12-digit personal ID number"),
        ("NgayThangNamSinh", "15/02/1990", "yyyyMMdd"),
        ("NgayThangNamSinh", "19900231", "not a calendar date"),
    ],
)
async def test_bad_input_is_refused_with_a_sentence_before_any_call(
    rr_hub: RunningHub, population: httpx.Client, field: str, value: str, sentence: str
) -> None:
    response = await _request(rr_hub, "population.lookup", population_request(**{field: value}))
    assert response.status_code == 422
    assert response.json()["error"] == "invalid"
    assert any(field in error and sentence in error for error in response.json()["errors"]), response.json()
    assert population.get("/_mock/calls").json() == []


async def test_a_busy_database_is_retried_inside_the_timeout(rr_hub: RunningHub, population: httpx.Client) -> None:
    population.post("/_mock/faults", json={"fault_next": 1, "throttle_next": 1, "retry_after": 0})
    response = await _request(rr_hub, "population.lookup", population_request())
    assert response.status_code == 200, response.text
    outcomes = [call["outcome"] for call in population.get("/_mock/calls").json()]
    assert outcomes == ["throttled", "fault", "answered"]


async def test_a_client_fault_is_answered_at_once_as_rejected(rr_hub: RunningHub, population: httpx.Client) -> None:
    population.post(
        "/_mock/faults", json={"fault_next": 5, "fault_code": "soap:Client", "fault_string": "MaDVC không hợp lệ"}
    )
    response = await _request(rr_hub, "population.lookup", population_request())
    assert response.status_code == 422
    assert response.json()["error"] == "rejected"
    assert "MaDVC không hợp lệ" in response.json()["detail"]
    assert len(population.get("/_mock/calls").json()) == 1  # permanent: never retried
    assert (await _audit(rr_hub, response.json()["id"]))["outcome"] == "rejected"


@pytest.mark.parametrize("evil", ["billion_laughs", "external_entity"])
async def test_entity_payloads_from_the_database_are_refused(
    rr_hub: RunningHub, population: httpx.Client, evil: str
) -> None:
    population.post("/_mock/faults", json={"evil_next": 5, "evil": evil})
    response = await _request(rr_hub, "population.lookup", population_request())
    assert response.status_code == 502
    assert response.json()["error"] == "failed"
    assert "refused for safety" in response.json()["detail"] or "refuses such XML" in response.json()["detail"]
    assert "root:" not in response.text  # /etc/passwd was never read
    assert len(population.get("/_mock/calls").json()) == 1


async def test_no_answer_within_the_timeout_is_a_504_with_a_sentence(
    rr_hub: RunningHub, population: httpx.Client
) -> None:
    population.post("/_mock/faults", json={"hang_next": 10, "hang_seconds": 5})
    response = await _request(rr_hub, "population.lookup", population_request())
    assert response.status_code == 504
    body = response.json()
    assert body["error"] == "timeout"
    assert "within 3 s" in body["detail"]
    assert (await _audit(rr_hub, body["id"]))["outcome"] == "timeout"


async def test_rate_limit_answers_429_with_retry_after_per_system(rr_hub: RunningHub, population: httpx.Client) -> None:
    body = population_request(CITIZEN_NGOC, HoVaTen="Trần Thị Bích Ngọc", NgayThangNamSinh="19850704")
    statuses = [(await _request(rr_hub, "population.verify", body, key=MINISTRY_KEY)).status_code for _ in range(5)]
    assert statuses == [200] * 5
    throttled = await _request(rr_hub, "population.verify", body, key=MINISTRY_KEY)
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert "ministry" in throttled.json()["detail"]
    # another system has its own bucket
    assert (await _request(rr_hub, "population.verify", body)).status_code == 200
    assert len(population.get("/_mock/calls").json()) == 6


async def test_auth_type_and_mode_errors(rr_hub: RunningHub, population: httpx.Client) -> None:
    assert (await _request(rr_hub, "population.lookup", population_request(), key="wrong")).status_code == 401
    refused = await _request(rr_hub, "population.lookup", population_request(), key=MINISTRY_KEY)
    assert refused.status_code == 403
    unknown = await _request(rr_hub, "dossier.upserted", {})
    assert unknown.status_code == 404
    assert "population.lookup" in unknown.json()["detail"]
    queued = await rr_hub.post("population.lookup", population_request())
    assert queued.status_code == 422
    assert "/v1/requests/population.lookup" in queued.json()["detail"]


async def test_without_a_worker_the_504_says_to_start_one(tmp_path: Path, population_url: str) -> None:
    routes = write_population_routes(tmp_path / "routes", population_url, timeout="500ms")
    async with running_hub(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        routes_dir=routes,
        portal_url=population_url,
        workers=False,
    ) as running:
        response = await _request(running, "population.lookup", population_request())
    assert response.status_code == 504
    assert "hub worker --target population-db" in response.json()["detail"]
