"""The ingress API answers as the contract says (real broker, real database)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.harness import MINISTRY_KEY, ONESTOP_KEY, RunningHub, eventually, running_hub
from tests.support.payloads import dossier, dossier_code, step
from tests.support.streaming import stream_large_body

pytestmark = pytest.mark.integration

ADMIN_KEY = "test-admin-key-not-a-secret"


async def test_accepts_a_dossier_and_delivers_it_to_the_portal(hub: RunningHub, portal: httpx.Client) -> None:
    payload = dossier(status=1)
    response = await hub.post("dossier.upserted", payload)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["targets"] == ["national-portal"]

    async def delivered() -> bool:
        return await hub.delivery_state(body["id"]) == "delivered"

    await eventually(delivered)
    at_portal = portal.get(f"/_mock/dossiers/{payload['MaHoSo']}").json()
    assert at_portal["current"]["TrangThaiHoSo"] == 1
    assert at_portal["current"]["ChuHoSo"] == "Nguyễn Thị Thử Nghiệm"


async def test_the_same_idempotency_key_returns_the_original_id_and_sends_once(
    hub: RunningHub, portal: httpx.Client
) -> None:
    payload = dossier()
    first = await hub.post("dossier.upserted", payload, idempotency_key="k-" + payload["MaHoSo"])
    second = await hub.post("dossier.upserted", payload, idempotency_key="k-" + payload["MaHoSo"])
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["duplicate"] is True

    async def delivered() -> bool:
        return await hub.delivery_state(first.json()["id"]) == "delivered"

    await eventually(delivered)
    calls = [c for c in portal.get("/_mock/calls").json() if payload["MaHoSo"] in str(c)]
    assert len(calls) == 1


async def test_schema_violations_are_422_with_a_sentence_per_field(hub: RunningHub) -> None:
    payload = dossier(MaHoSo="not-a-code", NgayTiepNhan="2026-11-26", TrangThaiHoSo=42)
    del payload["ChuHoSo"]
    response = await hub.post("dossier.upserted", payload)
    assert response.status_code == 422
    body = response.json()
    assert "dossier.upserted" in body["detail"]
    errors = " | ".join(body["errors"])
    assert "Field 'MaHoSo'" in errors
    assert "H15.50.05.13-261008-0975" in errors
    assert "Field 'NgayTiepNhan'" in errors
    assert "yyyyMMddHHmmss" in errors
    assert "Field 'ChuHoSo' is required." in errors
    assert "Field 'TrangThaiHoSo'" in errors
    assert len(body["errors"]) == 4


async def test_unknown_type_is_422_and_names_the_known_types(hub: RunningHub) -> None:
    response = await hub.post("dossier.deleted", {"MaHoSo": dossier_code()})
    assert response.status_code == 422
    assert "dossier.deleted" in response.json()["detail"]
    assert "dossier.upserted" in response.json()["detail"]


async def test_missing_or_wrong_key_is_401(hub: RunningHub) -> None:
    no_key = await hub.client.post(f"{hub.url}/v1/messages", json={"type": "dossier.upserted", "payload": dossier()})
    assert no_key.status_code == 401
    assert "Authorization: Bearer" in no_key.json()["detail"]
    wrong = await hub.post("dossier.upserted", dossier(), key="not-the-key")
    assert wrong.status_code == 401


async def test_a_type_the_system_may_not_send_is_403(hub: RunningHub) -> None:
    response = await hub.post("dossier.upserted", dossier(), key=MINISTRY_KEY)
    assert response.status_code == 403
    assert "ministry" in response.json()["detail"]
    allowed = await hub.post("dossier.progress", step(dossier_code()), key=MINISTRY_KEY)
    assert allowed.status_code == 202


async def test_bad_bodies_get_clear_errors_not_500(hub: RunningHub) -> None:
    headers = {"Authorization": "Bearer test-key-onestop-not-a-secret", "Content-Type": "application/json"}
    url = f"{hub.url}/v1/messages"
    malformed = await hub.client.post(url, content=b'{"type": "dossier.upserted", "payload": {', headers=headers)
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.json()["detail"]
    not_utf8 = await hub.client.post(
        url, content=b'{"type": "dossier.upserted", "payload": {"MaHoSo": "\xff"}}', headers=headers
    )
    assert not_utf8.status_code == 400
    assert "UTF-8" in not_utf8.json()["detail"]
    too_big = await hub.client.post(url, content=b"x" * 2_000_000, headers=headers)
    assert too_big.status_code == 413
    shape = await hub.client.post(url, json=["dossier.upserted"], headers=headers)
    assert shape.status_code == 422


@pytest.mark.parametrize("escaped", [False, True], ids=["utf8-text", "json-escapes"])
async def test_nfd_text_is_normalised_to_nfc(hub: RunningHub, portal: httpx.Client, escaped: bool) -> None:
    """NFD arrives as UTF-8 text (normalised in the text) or as \\u escapes (normalised after parsing)."""
    name = unicodedata.normalize("NFD", "Lê Thị Hồng Nhung")
    address = unicodedata.normalize("NFD", "Phường Hàng Bạc")
    body = json.dumps(
        {"type": "dossier.upserted", "payload": dossier(ChuHoSo=name, TrichYeuHoSo=address)}, ensure_ascii=escaped
    ).encode()
    assert (b"\\u" in body) is escaped
    response = await hub.client.post(
        f"{hub.url}/v1/messages", content=body, headers={"Authorization": f"Bearer {ONESTOP_KEY}"}
    )
    assert response.status_code == 202
    message = await hub.message(response.json()["id"])
    assert message["payload"]["ChuHoSo"] == "Lê Thị Hồng Nhung"
    assert message["payload"]["TrichYeuHoSo"] == "Phường Hàng Bạc"


async def test_messages_of_a_dossier_are_listed_in_order(hub: RunningHub) -> None:
    code = dossier_code()
    ids = []
    for status in (1, 2, 4):
        response = await hub.post("dossier.upserted", dossier(code, status=status))
        ids.append(response.json()["id"])
    ids.append((await hub.post("dossier.progress", step(code))).json()["id"])
    response = await hub.client.get(
        f"{hub.url}/v1/dossiers/{code}/messages",
        headers={"Authorization": "Bearer test-key-onestop-not-a-secret"},
    )
    assert response.status_code == 200
    listed = response.json()["messages"]
    assert [m["id"] for m in listed] == ids
    assert [m["seq"] for m in listed] == sorted(m["seq"] for m in listed)


async def test_health_readiness_metrics_and_contract(hub: RunningHub) -> None:
    assert (await hub.client.get(f"{hub.url}/healthz")).json() == {"status": "ok"}
    # `hub run` serves before it has declared its queues: not ready until then (a CI run posted
    # the demo's first message in between and got an honest but avoidable 503).
    hub.hub.starting = "The hub is still declaring its queues in RabbitMQ."
    starting = await hub.client.get(f"{hub.url}/readyz")
    assert starting.status_code == 503
    assert starting.json()["problems"] == ["The hub is still declaring its queues in RabbitMQ."]
    hub.hub.starting = None
    assert (await hub.client.get(f"{hub.url}/readyz")).json() == {"status": "ready"}
    response = await hub.post("dossier.upserted", dossier())

    async def delivered() -> bool:
        return await hub.delivery_state(response.json()["id"]) == "delivered"

    await eventually(delivered)
    metrics = (await hub.client.get(f"{hub.url}/metrics")).text
    assert 'hub_messages_accepted_total{route="dossier-sync",source="onestop"} 1.0' in metrics
    assert 'hub_deliveries_delivered_total{route="dossier-sync",target="national-portal"} 1.0' in metrics
    assert 'hub_queue_depth{target="national-portal"}' in metrics
    assert "hub_delivery_latency_seconds_bucket" in metrics
    spec = (await hub.client.get(f"{hub.url}/openapi.json")).json()
    assert "/v1/messages" in spec["paths"]
    # Reading a message is part of the contract too: its answer is documented, field by field.
    read = spec["paths"]["/v1/messages/{message_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert read["schema"] == {"$ref": "#/components/schemas/MessageRecord"}
    delivery = spec["components"]["schemas"]["DeliveryRecord"]
    assert {"target", "state", "attempts", "in_doubt", "next_attempt_at", "last_error"} <= set(delivery["required"])
    assert "asks the target whether it has the message" in delivery["properties"]["in_doubt"]["description"]
    answer = await hub.message(response.json()["id"])
    assert answer["deliveries"][0]["in_doubt"] is False
    assert answer["deliveries"][0]["delivered_at"].endswith("+00:00")  # written as before the model


async def _answers(hub: RunningHub, code: str) -> list[tuple[int, str | None, str | None, dict[str, object]]]:
    """The ingress's answers to a round of good and bad posts: status, content type, Retry-After, body."""
    url = f"{hub.url}/v1/messages"
    auth = {"Authorization": f"Bearer {ONESTOP_KEY}"}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit is found while reading
        for _ in range(3):
            yield b"x" * 600_000

    replies = [
        await hub.post("dossier.upserted", dossier(code, status=1), idempotency_key=f"k-{code}"),
        await hub.post("dossier.upserted", dossier(code, status=1), idempotency_key=f"k-{code}"),
        await hub.client.post(url, json={"type": "dossier.upserted", "payload": dossier(code)}),
        await hub.post("dossier.upserted", dossier(code), key=ADMIN_KEY),
        await hub.post("dossier.upserted", dossier(code), key=MINISTRY_KEY),
        await hub.client.post(url, content=b'{"type": ', headers=auth),
        await hub.client.post(url, content=b"\xff\xfe", headers=auth),
        await hub.client.post(url, content=b"x" * 2_000_000, headers=auth),
        await hub.client.post(url, content=chunks(), headers=auth),
        await hub.post("dossier.upserted", dossier(code, TrangThaiHoSo=42)),
        await hub.post("dossier.upserted", dossier(code), idempotency_key="k" * 201),
    ]
    answers = []
    for reply in replies:
        body = reply.json()
        if "id" in body:
            body["id"] = "<id>"
        answers.append((reply.status_code, reply.headers.get("content-type"), reply.headers.get("retry-after"), body))
    return answers


async def test_the_post_shortcut_answers_as_the_fastapi_route_does(
    database_url: str, routes_dir: Path, portal_url: str
) -> None:
    answers = []
    for shortcut in (True, False):
        async with running_hub(
            database_url=database_url, routes_dir=routes_dir, portal_url=portal_url, workers=False,
            admin_key=ADMIN_KEY, ingress_shortcut=shortcut,
        ) as hub:  # fmt: skip
            assert (hub.hub.settings.ingress_shortcut, hub.hub.settings.admin_key is not None) == (shortcut, True)
            answers.append(await _answers(hub, dossier_code()))
    with_shortcut, without_shortcut = answers
    assert [a[0] for a in with_shortcut] == [202, 202, 401, 403, 403, 400, 400, 413, 413, 422, 422]
    assert with_shortcut[0][3] == {"id": "<id>", "targets": ["national-portal"], "duplicate": False}
    assert with_shortcut[1][3]["duplicate"] is True
    # Without a Content-Length, both stop reading at the limit (the route read it all before issue #17).
    too_big = "The body is more than 1048576 bytes; this endpoint accepts at most 1048576 bytes. Send a smaller body."
    assert with_shortcut[8][3] == without_shortcut[8][3] == {"detail": too_big}
    assert with_shortcut == without_shortcut


async def test_an_unexpected_failure_is_a_500_with_a_sentence_and_the_ingress_goes_on(
    hub: RunningHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    accept = hub.hub.store.accept

    async def failing(**_kwargs: object) -> None:
        raise RuntimeError("a bug in the store")

    monkeypatch.setattr(hub.hub.store, "accept", failing)
    failed = await hub.post("dossier.upserted", dossier())
    assert failed.status_code == 500
    assert "did not accept it" in failed.json()["detail"]
    assert "Idempotency-Key" in failed.json()["detail"]
    monkeypatch.setattr(hub.hub.store, "accept", accept)
    assert (await hub.post("dossier.upserted", dossier())).status_code == 202


# --------------------------------------------------------------------------- the edge (issue #17)


@pytest.mark.parametrize("shortcut", [True, False], ids=["shortcut", "fastapi-route"])
async def test_a_large_body_is_refused_before_it_is_read_and_the_connection_closes(
    database_url: str, routes_dir: Path, portal_url: str, shortcut: bool
) -> None:
    async with running_hub(
        database_url=database_url, routes_dir=routes_dir, portal_url=portal_url, workers=False,
        ingress_shortcut=shortcut,
    ) as hub:  # fmt: skip
        upload = await stream_large_body(
            f"{hub.url}/v1/messages", {"Authorization": f"Bearer {ONESTOP_KEY}", "Content-Type": "application/json"}
        )
    assert upload.status == 413, upload.head
    assert "connection: close" in upload.head.lower()
    assert upload.closed
    assert upload.sent < 8 * 1024 * 1024  # of 64 MiB: the hub read about its limit (1 MiB), then closed


async def test_control_characters_in_the_address_query_or_body_are_refused_with_a_sentence(hub: RunningHub) -> None:
    """On PostgreSQL a NUL used to reach the driver and come back as a 503 with the driver's text."""
    headers = {"Authorization": f"Bearer {ONESTOP_KEY}"}
    for path in ("/v1/messages/%00", "/v1/dossiers/A%00B/messages", "/v1/messages/a%01b", "/v1/messages/x?q=%00"):
        answer = await hub.client.get(f"{hub.url}{path}", headers=headers)
        assert answer.status_code == 400, (path, answer.text)
        assert "control character" in answer.json()["detail"], path
    raw = json.dumps({"type": "dossier.upserted", "payload": dossier(TrichYeuHoSo="a\u0000b")}).encode()
    assert b"\\u0000" in raw
    answer = await hub.client.post(f"{hub.url}/v1/messages", content=raw, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == ["Field 'payload.TrichYeuHoSo' holds a control character (U+0000); remove it."]
    bell = await hub.post("dossier.upserted", dossier(ChuHoSo="Nguyễn\x07 An"))
    assert bell.status_code == 422
    assert "U+0007" in bell.text
    lines = await hub.post("dossier.upserted", dossier(TrichYeuHoSo="Dòng một\nDòng hai\tcột"))
    assert lines.status_code == 202, lines.text  # tab and line breaks stay allowed in text


async def test_unknown_dossier_fields_are_refused_in_one_sentence_naming_them(hub: RunningHub) -> None:
    junky = dossier()
    junky.update({f"Rac{i}": "x" * 10 for i in range(10_000)})
    answer = await hub.post("dossier.upserted", junky)
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert len(errors) == 1
    assert errors[0].startswith("The schema has no fields 'Rac0', 'Rac1', ")
    assert "and 9980 more" in errors[0]
    assert len(answer.content) < 2000
    nested = await hub.post("dossier.upserted", dossier(TaiLieuNop=[{"TenTepDinhKem": "Tờ khai", "GhiChu": "?"}]))
    assert nested.status_code == 422
    assert nested.json()["errors"] == [
        "The schema has no field 'GhiChu' in 'TaiLieuNop.0'; remove it (the hub neither stores nor sends on fields "
        "it does not know)."
    ]
