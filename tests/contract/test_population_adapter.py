"""Contract of the population adapter: answers mapped, and every failure it can see translated.

Runs against the mock SOAP server; set ``HUB_CONTRACT_POPULATION_URL`` (service URL) and
``HUB_CONTRACT_POPULATION_CODE`` (MaTichHop) to run the answer tests against a real endpoint
(the fault-knob tests are skipped then).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from adapters.population import PopulationAdapter, create_adapter
from hub.adapter import RequestAdapter, RequestContext
from hub.envelope import Envelope
from hub.errors import PermanentDeliveryError, TransientDeliveryError, UnusableReplyError
from mocks._serve import serve_app
from mocks.population import DEFAULT_INTEGRATION_CODE, create_app
from tests.support.harness import free_port
from tests.support.identity import CITIZEN_AN, UNKNOWN_CITIZEN, population_request

REAL_URL = os.environ.get("HUB_CONTRACT_POPULATION_URL")
mock_only = pytest.mark.skipif(REAL_URL is not None, reason="fault knobs exist only on the mock")


@pytest.fixture(scope="module")
def service() -> Iterator[tuple[str, str]]:
    if REAL_URL:
        yield REAL_URL, os.environ["HUB_CONTRACT_POPULATION_CODE"]
        return
    with serve_app(create_app()) as url:
        yield f"{url}/dancu", DEFAULT_INTEGRATION_CODE


@pytest.fixture
def knobs(service: tuple[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service[0].removesuffix("/dancu"), timeout=5) as client:
        if not REAL_URL:
            client.delete("/_mock/faults")
        yield client
        if not REAL_URL:
            client.delete("/_mock/faults")


@pytest.fixture
async def adapter(service: tuple[str, str]) -> AsyncIterator[PopulationAdapter]:
    built = create_adapter(
        "population-db", {"service_url": service[0], "integration_code": service[1], "timeout_seconds": 1}
    )
    yield built
    await built.aclose()


async def _lookup(
    adapter: PopulationAdapter, message_type: str = "population.lookup", **payload: Any
) -> dict[str, Any]:
    envelope = Envelope(type=message_type, source="onestop", payload=population_request(**payload))
    return await adapter.request(envelope, RequestContext("population-db", "r", "onestop", 1, time.time() + 10))


async def test_it_is_a_request_adapter(adapter: PopulationAdapter) -> None:
    assert isinstance(adapter, RequestAdapter)
    await adapter.check()


async def test_lookup_and_verify_answers(adapter: PopulationAdapter, knobs: httpx.Client) -> None:
    found = await _lookup(adapter, number=CITIZEN_AN)
    assert found["found"] is True
    assert found["CongDan"]["SoDinhDanh"] == CITIZEN_AN
    assert (await _lookup(adapter, number=UNKNOWN_CITIZEN))["found"] is False
    verified = await _lookup(
        adapter, "population.verify", number=CITIZEN_AN, HoVaTen="Nguyễn Văn An", NgayThangNamSinh="19900215"
    )
    assert verified["TonTai"] is True
    wrong = await _lookup(
        adapter, "population.verify", number=CITIZEN_AN, HoVaTen="Nguyễn Văn An", NgayThangNamSinh="19900216"
    )
    assert wrong["TonTai"] is False


@mock_only
@pytest.mark.parametrize(
    ("faults", "error", "sentence"),
    [
        ({"fault_next": 1}, TransientDeliveryError, "SOAP fault soap:Server"),
        (
            {"fault_next": 1, "fault_code": "soap:Client", "fault_string": "Sai MaDVC"},
            PermanentDeliveryError,
            "Sai MaDVC",
        ),
        ({"throttle_next": 1, "retry_after": 7}, TransientDeliveryError, "HTTP 429"),
        ({"http_error_next": 1, "status": 503}, TransientDeliveryError, "HTTP 503"),
        ({"http_error_next": 1, "status": 403}, PermanentDeliveryError, "not subscribed"),
        ({"http_error_next": 1, "status": 404}, UnusableReplyError, "Check service_url"),
        ({"garbage_next": 1}, UnusableReplyError, "not SOAP XML"),
        ({"evil_next": 1, "evil": "billion_laughs"}, UnusableReplyError, "billion-laughs"),
        ({"evil_next": 1, "evil": "external_entity"}, UnusableReplyError, "XXE"),
        ({"hang_next": 1, "hang_seconds": 3}, TransientDeliveryError, "did not answer"),
    ],
)
async def test_every_failure_is_translated(
    adapter: PopulationAdapter,
    knobs: httpx.Client,
    faults: dict[str, Any],
    error: type[Exception],
    sentence: str,
) -> None:
    knobs.post("/_mock/faults", json=faults)
    with pytest.raises(error, match=sentence) as caught:
        await _lookup(adapter)
    assert type(caught.value) is error
    if "retry_after" in faults:
        assert caught.value.retry_after == 7  # type: ignore[attr-defined]


@mock_only
async def test_an_unknown_integration_code_is_refused(service: tuple[str, str]) -> None:
    wrong = create_adapter("population-db", {"service_url": service[0], "integration_code": "NOT-GRANTED"})
    try:
        with pytest.raises(PermanentDeliveryError, match="MaTichHop"):
            await _lookup(wrong)
    finally:
        await wrong.aclose()


async def test_an_unreachable_database_is_transient() -> None:
    closed = create_adapter(
        "population-db",
        {"service_url": f"http://127.0.0.1:{free_port()}/dancu", "integration_code": "X", "timeout_seconds": 1},
    )
    try:
        with pytest.raises(TransientDeliveryError, match="Could not connect"):
            await _lookup(closed)
        with pytest.raises(TransientDeliveryError):
            await closed.check()
    finally:
        await closed.aclose()


async def test_a_wrong_type_is_permanent(adapter: PopulationAdapter) -> None:
    envelope = Envelope(type="dossier.upserted", source="onestop", payload={})
    with pytest.raises(PermanentDeliveryError, match=r"answers population\.lookup, population\.verify only"):
        await adapter.request(envelope, RequestContext("population-db", "r", "onestop", 1, time.time() + 5))
