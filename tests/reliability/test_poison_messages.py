"""Fault 7: poison messages in the middle of a steady stream.

Each ends in a clear error (400 / 413 with a sentence) or in the dead-letter queue with a reason,
and the stream around it is delivered as if nothing happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest

from hub.envelope import Envelope, encode_envelope
from tests.reliability.conftest import TARGET, HubFactory, ReliableHub, Scale, ScratchDatabase
from tests.reliability.faults import dead_letters, publish_raw
from tests.reliability.reconciliation import Figures, reconcile
from tests.reliability.traffic import PlannedMessage, TrafficStream, plan_messages
from tests.support.harness import ONESTOP_KEY, RABBITMQ_URL
from tests.support.payloads import dossier, dossier_code

pytestmark = [pytest.mark.reliability, pytest.mark.e2e]

AUTH = {"Authorization": f"Bearer {ONESTOP_KEY}"}
FIVE_MB = 5 * 1024 * 1024
UNKNOWN_PROCEDURE = "9.999999"


def _planned(key: str, payload: dict[str, object]) -> PlannedMessage:
    return PlannedMessage(
        key=key,
        type="dossier.upserted",
        dossier=str(payload["MaHoSo"]),
        effect=f"status:{payload['TrangThaiHoSo']}",
        payload=dict(payload),
    )


def _post(client: httpx.Client, message: PlannedMessage, payload: dict[str, object] | None = None) -> httpx.Response:
    body = {"type": message.type, "payload": payload or message.payload}
    response = client.post("/v1/messages", json=body, headers={**AUTH, "Idempotency-Key": message.key})
    message.posts += 1
    message.statuses.append(response.status_code)
    if response.status_code == 202:
        message.ids.add(str(response.json()["id"]))
    return response


def _send_poison_round(client: httpx.Client, hub: ReliableHub, run: str, n: int) -> list[PlannedMessage]:
    """One of each poison; returns the ones the hub accepted (to reconcile with the stream)."""
    malformed = client.post(
        "/v1/messages",
        content=b'{"type": "dossier.upserted", "payload": {"MaHoSo": ',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400, malformed.text
    assert "not valid JSON" in malformed.json()["detail"]

    not_utf8 = client.post(
        "/v1/messages",
        content=b'{"type": "dossier.upserted", "payload": {"ChuHoSo": "Nguy\xe1\xbb\x85n \xff\xfe"}}',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert not_utf8.status_code == 400, not_utf8.text
    assert "not UTF-8" in not_utf8.json()["detail"]

    huge = orjson.dumps({"type": "dossier.upserted", "payload": dossier(TrichYeuHoSo="x" * FIVE_MB)})
    too_big = client.post("/v1/messages", content=huge, headers={**AUTH, "Content-Type": "application/json"})
    assert too_big.status_code == 413, too_big.text
    assert "at most" in too_big.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the ingress must count while it reads
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    too_big_chunked = client.post(
        "/v1/messages", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert too_big_chunked.status_code == 413, too_big_chunked.text

    rejected = _planned(f"{run}:poison:{n}:unknown-procedure", dossier(MaTTHC=UNKNOWN_PROCEDURE))
    assert _post(client, rejected).status_code == 202

    duplicated = _planned(f"{run}:poison:{n}:same-key", dossier())
    first = _post(client, duplicated)
    again = _post(client, duplicated)
    other_body = _post(client, duplicated, dossier(duplicated.dossier, status=2))
    assert first.status_code == again.status_code == other_body.status_code == 202
    assert first.json()["duplicate"] is False
    assert again.json()["duplicate"] is True
    assert other_body.json()["duplicate"] is True
    assert len(duplicated.ids) == 1, "one Idempotency-Key, one message"

    publish_raw(RABBITMQ_URL, f"{hub.environment.namespace}.deliver", TARGET, b"\xff not an envelope", f"raw-{run}-{n}")
    never_accepted = Envelope(type="dossier.upserted", source="onestop", dossier_code=dossier_code(), payload={})
    publish_raw(
        RABBITMQ_URL,
        f"{hub.environment.namespace}.deliver",
        TARGET,
        encode_envelope(never_accepted),
        never_accepted.id,
    )
    return [rejected, duplicated]


def test_poison_messages_end_in_clear_errors_or_the_dlq_and_spare_the_stream(
    make_hub: HubFactory,
    portal: httpx.Client,
    portal_url: str,
    database: ScratchDatabase,
    scale: Scale,
    record_figures: list[Figures],
) -> None:
    hub = make_hub()
    hub.start_ingress()
    hub.start_worker()
    run = uuid.uuid4().hex[:6]
    stream = TrafficStream(hub.url, plan_messages(scale.messages, run)).start()
    poison: list[PlannedMessage] = []
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        for n, share in enumerate((0.25, 0.5, 0.75)):
            stream.wait_accepted(int(len(stream) * share))
            poison += _send_poison_round(client, hub, run, n)
    stream.join()
    expected_dlq = {m.key for m in poison if m.key.endswith("unknown-procedure")}
    figures = reconcile(
        "7 poison messages x3 rounds",
        stream.messages + poison,
        database_url=database.url,
        portal_url=portal_url,
        settle_timeout=scale.settle_timeout,
        expected_dlq=expected_dlq,
    )
    record_figures.append(figures)
    figures.assert_accounted(hub=hub)
    assert figures.dlq == len(expected_dlq)

    in_queue = dead_letters(RABBITMQ_URL, hub.dlq)
    reasons = {message_id: reason or "" for message_id, reason in in_queue}
    figures.notes["dlq_queue"] = len(in_queue)
    rejected_ids = {next(iter(m.ids)) for m in poison if m.key in expected_dlq}
    for message_id in rejected_ids:
        assert UNKNOWN_PROCEDURE in reasons[message_id], reasons.get(message_id)
        assert f"hub replay {message_id}" in reasons[message_id]
    raw = [reason for message_id, reason in reasons.items() if message_id and message_id.startswith(f"raw-{run}")]
    assert len(raw) == 3
    assert all("could not be read" in reason for reason in raw)
    assert len(in_queue) == len(rejected_ids) + len(raw), "only the poison is in the dead-letter queue"
    assert portal.get("/_mock/stats").json()["dossiers"] == len(stream.groups) + len(poison) // 2
