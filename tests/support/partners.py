"""Mocks and route files for the payment and VNPost tests: fake platform, fake VNPost, one-stop receiver.

The fixtures are imported by the test modules that use them (``from tests.support.partners import …``).
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.plugin import DossierState, HubContext, UsesHubContext
from hub.services import latest_dossier_state
from hub.store import MessageStore
from mocks._serve import serve_app
from mocks.onestop.receiver import create_receiver_app
from mocks.payment import DEFAULT_PARTNER_CODE, DEFAULT_SECRET
from mocks.payment import create_app as create_payment_app
from mocks.vnpost import DEFAULT_CALLBACK_TOKEN, DEFAULT_PASSWORD, DEFAULT_USERNAME
from mocks.vnpost import create_app as create_vnpost_app

ONESTOP_RECEIVER_KEY = "test-onestop-receiver-key"

#: A receiver address that passes the schema: Phường Hoàn Kiếm, Hà Nội.
RECEIVER = {"Address": "1 Tràng Tiền", "ProvinceCode": "01", "WardCode": "00070"}


@pytest.fixture(scope="session")
def payment_url() -> Iterator[str]:
    with serve_app(create_payment_app()) as url:
        yield url


@pytest.fixture(scope="session")
def vnpost_url() -> Iterator[str]:
    with serve_app(create_vnpost_app()) as url:
        yield url


@pytest.fixture(scope="session")
def receiver_url() -> Iterator[str]:
    with serve_app(create_receiver_app(ONESTOP_RECEIVER_KEY)) as url:
        yield url


@pytest.fixture
async def platform(payment_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Control client of the fake payment platform, reset around each test."""
    async with httpx.AsyncClient(base_url=payment_url, timeout=15) as client:
        await client.delete("/_mock/state")
        yield client
        await client.delete("/_mock/faults")


@pytest.fixture
async def vnpost(vnpost_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=vnpost_url, timeout=15) as client:
        await client.delete("/_mock/state")
        yield client
        await client.delete("/_mock/faults")


@pytest.fixture
async def receiver(receiver_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=receiver_url, timeout=15) as client:
        await client.delete("/_mock/received")
        await client.delete("/_mock/faults")
        yield client


async def received(receiver: httpx.AsyncClient, message_type: str, dossier: str) -> list[dict[str, Any]]:
    response = await receiver.get("/_mock/received", params={"type": message_type, "dossier": dossier})
    response.raise_for_status()
    return list(response.json())


def write_partner_routes(
    folder: Path,
    *,
    portal_url: str,
    payment_url: str,
    vnpost_url: str,
    receiver_url: str,
    query_after: str = "300ms",
    reconcile_interval: str = "200ms",
    poll_after: str = "1h",
    poll_interval: str = "200ms",
) -> Path:
    """Route files of a hub with the portal, the payment platform, VNPost and the one-stop receiver."""
    folder.mkdir(parents=True, exist_ok=True)
    fast_retry = "{attempts: 5, backoff: [200ms, 500ms, 1s]}"
    (folder / "hub.yaml").write_text(
        textwrap.dedent(
            f"""
            systems:
              - id: onestop
                key_env: HUB_SYSTEM_KEY_ONESTOP
                allowed_types: [dossier.upserted, dossier.progress, payment.init, payment.refund,
                                postal.order, postal.cancel]
            targets:
              - id: national-portal
                adapter: national_portal
                config: {{base_url: "{portal_url}", client_id: test-client, client_secret: test-secret-not-real,
                         timeout_seconds: 3}}
              - id: payment-platform
                adapter: payment_platform
                config:
                  base_url: {payment_url}
                  partner_code: {DEFAULT_PARTNER_CODE}
                  secret: {DEFAULT_SECRET}
                  timeout_seconds: 3
                  query_after: {query_after}
                  query_every: 300ms
                  give_up_after: 1h
                  reconcile_interval: {reconcile_interval}
              - id: vnpost
                adapter: vnpost
                config:
                  base_url: {vnpost_url}
                  username: {DEFAULT_USERNAME}
                  password: {DEFAULT_PASSWORD}
                  customer_code: C000001
                  callback_token: {DEFAULT_CALLBACK_TOKEN}
                  timeout_seconds: 3
                  poll_after: {poll_after}
                  poll_interval: {poll_interval}
                  agency_name: Bộ phận Một cửa thử nghiệm
                  agency_phone: "02400000000"
                  agency_address: 1 Đường Thử
                  agency_province: "01"
                  agency_ward: "00070"
              - id: onestop
                adapter: onestop
                config: {{url: "{receiver_url}/lgsp/messages", api_key: {ONESTOP_RECEIVER_KEY}, timeout_seconds: 3}}
            routes:
              - {{name: dossier-sync, type: dossier.upserted, schema: dossier.upserted/v1, ordering: latest-state,
                 targets: [national-portal], retry: {fast_retry}}}
              - {{name: dossier-progress, type: dossier.progress, schema: dossier.progress/v1,
                 targets: [national-portal], retry: {fast_retry}}}
              - {{name: payment-init, type: payment.init, schema: payment.init/v1, mode: request-reply, timeout: 10s,
                 targets: [payment-platform], retry: {{attempts: 3, backoff: [200ms]}}}}
              - {{name: payment-refund, type: payment.refund, schema: payment.refund/v1, mode: request-reply,
                 timeout: 10s, targets: [payment-platform], retry: {{attempts: 3, backoff: [200ms]}}}}
              - {{name: payment-completed, type: payment.completed, schema: payment.completed/v1,
                 targets: [onestop], retry: {fast_retry}}}
              - {{name: payment-receipt, type: payment.receipt, schema: payment.receipt/v1,
                 targets: [onestop], retry: {fast_retry}}}
              - {{name: postal-order, type: postal.order, schema: postal.order/v1, mode: request-reply, timeout: 10s,
                 targets: [vnpost], retry: {{attempts: 3, backoff: [200ms]}}}}
              - {{name: postal-cancel, type: postal.cancel, schema: postal.cancel/v1, mode: request-reply,
                 timeout: 10s, targets: [vnpost], retry: {{attempts: 3, backoff: [200ms]}}}}
              - {{name: postal-status, type: postal.status_changed, schema: postal.status_changed/v1,
                 ordering: latest-state, targets: [onestop], retry: {fast_retry}}}
            """
        ),
        encoding="utf-8",
    )
    return folder


@dataclass(frozen=True)
class _EngineContext:
    """The part of hub.plugin.HubContext an adapter tested on its own uses: the store's engine, and the
    dossier's latest state read from it."""

    engine: AsyncEngine

    async def latest_state(self, dossier_code: str) -> DossierState | None:
        return await latest_dossier_state(self.engine, dossier_code)


def bind_store(adapter: UsesHubContext, store: MessageStore) -> None:
    """Give an adapter tested on its own (contract tests) the store it keeps its records in."""
    adapter.bind(cast(HubContext, _EngineContext(store.engine)))
