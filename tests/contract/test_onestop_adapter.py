"""The one-stop adapter against the one-stop receiving mock: delivery and failure translation."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.onestop import OneStopAdapter, create_adapter
from hub.adapter import DeliveryContext
from hub.envelope import Envelope
from hub.errors import PermanentDeliveryError, TransientDeliveryError
from tests.support.partners import ONESTOP_RECEIVER_KEY, receiver, receiver_url  # noqa: F401 - fixtures
from tests.support.payloads import dossier_code

CONTEXT = DeliveryContext(target="onestop", attempt=1)


@pytest.fixture
async def adapter(receiver_url: str) -> AsyncIterator[OneStopAdapter]:  # noqa: F811
    adapter = create_adapter(
        "onestop", {"url": f"{receiver_url}/lgsp/messages", "api_key": ONESTOP_RECEIVER_KEY, "timeout_seconds": 1}
    )
    yield adapter
    await adapter.aclose()


def _message() -> Envelope:
    code = dossier_code()
    return Envelope(type="payment.completed", source="payment-platform", dossier_code=code, payload={"MaHoSo": code})


async def test_a_message_is_delivered_with_its_id_as_idempotency_key(
    adapter: OneStopAdapter,
    receiver: httpx.AsyncClient,  # noqa: F811
) -> None:
    envelope = _message()
    await adapter.deliver(envelope, CONTEXT)
    await adapter.deliver(envelope, CONTEXT)
    got = (await receiver.get("/_mock/received", params={"dossier": envelope.dossier_code})).json()
    assert [(g["id"], g["type"], g["duplicate"]) for g in got] == [
        (envelope.id, "payment.completed", False),
        (envelope.id, "payment.completed", True),
    ]
    assert got[0]["idempotency_key"] == envelope.id
    assert got[0]["payload"] == {"MaHoSo": envelope.dossier_code}


@pytest.mark.parametrize(
    ("faults", "error", "words"),
    [
        ({"fail_next": 1, "status": 503, "retry_after": 7}, TransientDeliveryError, "HTTP 503"),
        ({"fail_next": 1, "status": 500}, TransientDeliveryError, "HTTP 500"),
        ({"reject_next": 1}, PermanentDeliveryError, "HTTP 422"),
        ({"latency_ms": 1500}, TransientDeliveryError, "did not answer"),
    ],
)
async def test_every_failure_is_translated(
    adapter: OneStopAdapter,
    receiver: httpx.AsyncClient,  # noqa: F811
    faults: dict[str, Any],
    error: type[Exception],
    words: str,
) -> None:
    await receiver.post("/_mock/faults", json=faults)
    with pytest.raises(error, match=words) as caught:
        await adapter.deliver(_message(), CONTEXT)
    assert type(caught.value) is error
    if "retry_after" in faults:
        assert isinstance(caught.value, TransientDeliveryError)
        assert caught.value.retry_after == 7


async def test_a_wrong_key_and_an_unreachable_system(receiver_url: str) -> None:  # noqa: F811
    wrong = create_adapter("onestop", {"url": f"{receiver_url}/lgsp/messages", "api_key": "wrong"})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gone = create_adapter("onestop", {"url": f"http://127.0.0.1:{port}/lgsp/messages"})
    try:
        with pytest.raises(PermanentDeliveryError, match="HTTP 401"):
            await wrong.deliver(_message(), CONTEXT)
        with pytest.raises(TransientDeliveryError, match="Could not connect"):
            await gone.deliver(_message(), CONTEXT)
    finally:
        await wrong.aclose()
        await gone.aclose()
